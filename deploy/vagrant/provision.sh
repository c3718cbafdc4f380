#!/bin/sh
# Provisions one node: provision.sh REGION NODE-ID IP FIRST-IP-OF-REGION POOL-SEED-IP
# Installs the binary and the systemd unit, makes the region's secrets
# once (into /vagrant/deploy/vagrant/secrets, shared by the VMs), writes
# the node's configuration and starts it; the region's first node
# bootstraps it, the others join it. For tests: ROOT installs into a
# directory instead of / (and adds no user), BIN names the binary,
# SECRETS where the secrets go, SYSTEMCTL=true leaves systemd alone.
set -eu
region=$1 node=$2 ip=$3 first=$4 seed=$5
ROOT=${ROOT:-}
SRC=${SRC:-/vagrant}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
secrets=${SECRETS:-$SRC/deploy/vagrant/secrets}
bin=${BIN:-$SRC/bin/covid-node}
[ -x "$bin" ] || { echo "build the binary first: make build" >&2; exit 1; }

if [ -z "$ROOT" ] && ! id -u covid-node >/dev/null 2>&1; then
	useradd --system --home /var/lib/covid-backend --shell /usr/sbin/nologin covid-node
fi
install -D -m 0755 "$bin" "$ROOT/usr/local/bin/covid-node"
install -D -m 0644 "$SRC/deploy/systemd/covid-node.service" "$ROOT/etc/systemd/system/covid-node.service"

# The region's secrets, once: the CA, one certificate per node IP, the code,
# revision, export and federation keys, the admin token; the pool key once.
mkdir -p "$secrets"
[ -f "$secrets/pool.key" ] || "$bin" keygen --pool --out "$secrets/pool.key" >/dev/null
r=$secrets/$region
if [ ! -f "$r/ca.pem" ]; then
	"$bin" certs ca --dir "$r" --region "$region" >/dev/null
	"$bin" keygen --secret --out "$r/code.key" >/dev/null
	"$bin" keygen --secret --out "$r/revision.key" >/dev/null
	"$bin" keygen --ecdsa --out "$r/export" >/dev/null
	"$bin" keygen --out "$r/federation" >/dev/null
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$r/admin-token"
fi
[ -f "$r/$node.pem" ] || "$bin" certs node --dir "$r" --id "$node" --ip "$ip" >/dev/null

etc=$ROOT/etc/covid-backend
install -d -m 0750 "$etc"
for f in ca.pem "$node.pem" "$node.key" code.key revision.key export.key federation.key admin-token; do
	install -m 0600 "$r/$f" "$etc/$f"
done
install -m 0600 "$secrets/pool.key" "$etc/pool.key"
start=""
[ "$ip" = "$first" ] && start='"bootstrap": "true",' || start="\"join\": \"$first:7000\","
fed=""
[ "$ip" = "$seed" ] || fed="\"federation-join\": \"$seed:7946\","
cat > "$etc/node.json" <<JSON
{
  "node-id": "$node", "region": "$(echo "$region" | tr a-z A-Z)", "data-dir": "/var/lib/covid-backend",
  "http-addr": "$ip:8080", "raft-addr": "$ip:7000", $start
  "admin-token-file": "/etc/covid-backend/admin-token",
  "tls-ca-file": "/etc/covid-backend/ca.pem", "tls-cert-file": "/etc/covid-backend/$node.pem", "tls-key-file": "/etc/covid-backend/$node.key",
  "code-key-file": "/etc/covid-backend/code.key", "revision-key-file": "/etc/covid-backend/revision.key",
  "export-key-file": "/etc/covid-backend/export.key", "export-key-id": "$(echo "$region" | tr a-z A-Z)", "export-key-version": "v1",
  "signing-key-file": "/etc/covid-backend/federation.key", "signing-key-id": "$(echo "$region" | tr a-z A-Z)-1",
  "federation-addr": "$ip:7946", $fed "federation-pool-key-file": "/etc/covid-backend/pool.key"
}
JSON
[ -n "$ROOT" ] || chown -R covid-node:covid-node "$etc"
$SYSTEMCTL daemon-reload
$SYSTEMCTL enable --now covid-node
echo "$node provisioned: $ip, region $region"
