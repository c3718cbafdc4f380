// Command covid-node is the one binary of covid-backend: `serve` runs a node
// of a region; the other subcommands are operator tools that talk to a
// node's admin API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/covid-backend/covid-backend/command"
)

const usage = `usage: covid-node <command> [flags]

commands:
  serve                 run a node of a region
  dev-upload            publish random test keys with the development health authority
  dev-flow --lab-key K --app-key K
                        run an app's three calls (verify, certificate, publish) after a lab's issue, printing each
  members list|add|remove|promote|transfer-leadership
                        inspect and change the region's members
  ha add|list|remove    manage the health authorities whose certificates admit uploads
  providers add|list|revoke
                        manage the health care providers that issue one-time codes
  apikeys add|list|revoke
                        manage the verification service's API keys (device keys for apps, admin keys of providers, stats keys)
  users add|list        manage the web portal's accounts (/portal/: health care workers and operators)
  backup --out FILE --recipient AGE
                        write a consistent copy of the region's state (through the leader, while it serves), encrypted to the operators' age key
  restore --from FILE --identity KEY
                        seed a new region with a backup of the same region
  reseed --data-dir DIR make a stopped node with damaged raft state join its region again from its peers
  healthcheck           exit 0 if the node is ready (a container's HEALTHCHECK)
  policy show|set       the region policy (retention, padding, code lifetime) every node follows
  appconfig show|set|history
                        the configuration the region's apps run with (GAEN v1 and v2 scoring, minimum versions, texts, switches), by version
  service status|end|cancel
                        the region's end of service: when uploads stop, when the last keys age out, when its data is deleted
  revoke                withdraw keys: a submission, single keys, or what an issuer authorized since a time
  revocations           list the revocations with their reasons
  submissions           list the kept submissions (for rollback)
  certs ca|node|revoke|revoked
                        make the region's CA and node certificates (members speak raft over mutual TLS);
                        revoke one in the region, list the revoked
  version               the newest command version this build applies
  keygen                make keys: a federation signing key pair, a pool key (--pool), a secret (--secret), an ECDSA pair (--ecdsa), an operator's age identity (--age)
  hsm keygen|public     make a P-256 (or Ed25519) key pair in a PKCS#11 token (SoftHSM2), or print one's public key, for pkcs11:object=LABEL in the key flags
  trust add|add-gaen|add-efgs|list|remove
                        manage the regions whose signed batches this region accepts, the GAEN key servers whose export files it imports, and the EU gateway's countries whose keys it imports
  hub country           add, replace or remove a country of the stand-in EU gateway this region serves (--hub-addr)
  federation status|import
                        what this region keeps per origin; fetch a batch from a peer and import it

Run 'covid-node <command> -h' for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp): // the flags were printed as asked
	case err != nil:
		fmt.Fprintln(os.Stderr, "covid-node:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	if hasSubcommands(args[0]) && (len(args) == 1 || isHelp(args[1])) {
		commandHelp(stdout, args[0])
		if len(args) == 1 {
			return fmt.Errorf("%s: name a subcommand", args[0])
		}
		return nil
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "dev-upload":
		return devUpload(ctx, args[1:], stdout)
	case "dev-flow":
		return devFlow(ctx, args[1:], stdout)
	case "members":
		return members(ctx, args[1:], stdout)
	case "ha":
		return authorities(ctx, args[1:], stdout)
	case "providers":
		return providers(ctx, args[1:], stdout)
	case "apikeys":
		return apiKeys(ctx, args[1:], stdout)
	case "users":
		return users(ctx, args[1:], stdout)
	case "healthcheck":
		return healthcheck(ctx, args[1:], stdout)
	case "backup":
		return backupCmd(ctx, args[1:], stdout)
	case "restore":
		return restoreCmd(ctx, args[1:], stdout)
	case "reseed":
		return reseed(ctx, args[1:], stdout)
	case "keygen":
		return keygen(args[1:], stdout)
	case "certs":
		if len(args) > 1 && (args[1] == "revoke" || args[1] == "revoked") {
			return certsRevocation(ctx, args[1:], stdout)
		}
		return certs(args[1:], stdout)
	case "trust":
		return trustCmd(ctx, args[1:], stdout)
	case "hub":
		return hubCmd(ctx, args[1:], stdout)
	case "federation":
		return federationCmd(ctx, args[1:], stdout)
	case "appconfig":
		return appConfigCmd(ctx, args[1:], stdout)
	case "service":
		return serviceCmd(ctx, args[1:], stdout)
	case "hsm":
		return hsmCmd(args[1:], stdout)
	case "policy":
		return policyCmd(ctx, args[1:], stdout)
	case "revoke":
		return revoke(ctx, args[1:], stdout)
	case "revocations":
		return list(ctx, "revocations", "/v1/admin/revocations", args[1:], stdout)
	case "submissions":
		return list(ctx, "submissions", "/v1/admin/submissions", args[1:], stdout)
	case "version":
		fmt.Fprintf(stdout, "covid-node, command version %d\n", command.Version)
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
