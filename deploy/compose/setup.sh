#!/bin/sh
# Makes everything two federated regions (A and B, three nodes each) need,
# with the project's own commands, into $SECRETS (default ./secrets):
# region CAs and node certificates, code and revision token keys, export
# keys, federation signing keys, the gossip pool key and the admin tokens.
# The files belong to the user the image runs as (65532).
set -eu
cd "$(dirname "$0")"
NODE=${COVID_NODE:-../../bin/covid-node}
SECRETS=${SECRETS:-./secrets}
if [ -e "$SECRETS" ]; then echo "$SECRETS exists; remove it to make new secrets" >&2; exit 1; fi
mkdir -p "$SECRETS"
"$NODE" keygen --pool --out "$SECRETS/pool.key" >/dev/null
for r in a b; do
	n=1; [ "$r" = b ] && n=2
	"$NODE" certs ca --dir "$SECRETS/$r" --region "$r" >/dev/null
	for i in 1 2 3; do
		"$NODE" certs node --dir "$SECRETS/$r" --id "${r}$i" --ip "172.31.$n.1$i" >/dev/null
	done
	"$NODE" keygen --secret --out "$SECRETS/$r/code.key" >/dev/null
	"$NODE" keygen --secret --out "$SECRETS/$r/revision.key" >/dev/null
	"$NODE" keygen --ecdsa --out "$SECRETS/$r/export" >/dev/null
	"$NODE" keygen --out "$SECRETS/$r/federation" >/dev/null
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$SECRETS/$r/admin-token"
	chmod 0600 "$SECRETS/$r/admin-token"
done
chown -R 65532:65532 "$SECRETS"
echo "secrets in $SECRETS; now: docker-compose up -d"
