package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/covid-backend/covid-backend/api"
	"github.com/covid-backend/covid-backend/federation"
	"github.com/covid-backend/covid-backend/node"
)

// loadFederationKey reads the region's signing key, if one is given: a
// file, or an Ed25519 key in the PKCS#11 token (pkcs11:object=LABEL).
func loadFederationKey(c *serveConfig, keys *keyFiles) (*federation.Key, error) {
	if c.SigningKeyFile == "" {
		return nil, nil
	}
	id := c.SigningKeyID
	if id == "" {
		id = c.Region + "-1"
	}
	if strings.HasPrefix(c.SigningKeyFile, pkcs11Prefix) {
		signer, err := keys.loadEd25519(c.SigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("federation key: %w", err)
		}
		return &federation.Key{ID: id, Private: signer}, nil
	}
	k, err := federation.LoadKey(c.SigningKeyFile, id)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// parsePoolKeys reads a pool key file: one base64 key of 32 bytes a
// line. The first sends; the others are accepted on incoming gossip too,
// for a rotation (add the new key as a second line everywhere, then move
// it first everywhere, then drop the old line).
func parsePoolKeys(raw []byte) ([][]byte, error) {
	var keys [][]byte
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("federation pool key %d: want base64 of 32 bytes a line", len(keys)+1)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("federation pool key: the file holds no key")
	}
	return keys, nil
}

// startPool joins the federation pool when --federation-addr is set.
func startPool(c *serveConfig, n *node.Node, logger *slog.Logger) (*federation.Pool, error) {
	if c.FederationAddr == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(c.PoolKeyFile)
	if err != nil {
		return nil, fmt.Errorf("federation pool key: %w (make one with covid-node keygen --pool)", err)
	}
	keys, err := parsePoolKeys(raw)
	if err != nil {
		return nil, err
	}
	roots, err := federationRoots(c)
	if err != nil {
		return nil, err
	}
	return federation.Start(federation.Config{
		Region: c.Region, NodeID: c.NodeID, HTTPURL: c.apiScheme() + "://" + c.HTTPAddr, BindAddr: c.FederationAddr,
		Join: splitList(c.FederationJoin), PoolKey: keys[0], OldPoolKeys: keys[1:], RootCAs: roots, Logger: logger,
	}, n)
}

// keygen writes a new federation key pair: PREFIX.key (0600) and
// PREFIX.pub.pem for the other regions' trust stores; with --pool, a pool
// key shared by all gateways instead.
func keygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	describe(fs, "keygen")
	out := fs.String("out", "federation", "file name prefix: writes PREFIX.key and PREFIX.pub.pem (with --pool: the file itself)")
	pool := fs.Bool("pool", false, "make a pool key (32 random bytes, base64) instead of a signing key pair")
	secret := fs.Bool("secret", false, "make a code or revision token key (32 random bytes, base64) for --code-key-file or --revision-key-file")
	ecdsaKey := fs.Bool("ecdsa", false, "make an ECDSA P-256 key pair (PREFIX.key, PREFIX.pub.pem) for --export-key-file, --verify-cert-key-file or --verify-token-key-file")
	ageKey := fs.Bool("age", false, "make an operator's age identity (the file itself, 0600) for restore --identity; prints its recipient for backup --recipient")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ageKey {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return err
		}
		if err := writeNew(*out, []byte("# public key: "+id.Recipient().String()+"\n"+id.String()+"\n")); err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		fmt.Fprintf(stdout, "wrote age identity %s (keep it offline; restore --identity)\nrecipient: %s (backup --recipient)\n", *out, id.Recipient())
		return nil
	}
	if *ecdsaKey {
		return ecdsaKeygen(*out, stdout)
	}
	if *pool || *secret {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		if err := writeNew(*out, []byte(base64.StdEncoding.EncodeToString(key)+"\n")); err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		if *secret {
			fmt.Fprintf(stdout, "wrote key %s (give it to every node of the region, first in --code-key-file or --revision-key-file)\n", *out)
			return nil
		}
		fmt.Fprintf(stdout, "wrote pool key %s (give it to every gateway of every region, with --federation-pool-key-file)\n", *out)
		return nil
	}
	priv, pub, err := federation.GenerateKey()
	if err != nil {
		return err
	}
	if err := writeNew(*out+".key", priv); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := os.WriteFile(*out+".pub.pem", pub, 0o644); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s.key (keep it secret; give it to every node with --signing-key-file) and %s.pub.pem (give it to other regions)\n", *out, *out)
	return nil
}

// ecdsaKeygen writes a new ECDSA P-256 key (PKCS #8, 0600) and its public
// key (PKIX PEM), for export files (apps are configured with the public
// key) and the verification service's certificates and tokens.
func ecdsaKeygen(prefix string, stdout io.Writer) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writeNew(prefix+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv})); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := os.WriteFile(prefix+".pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s.key (keep it secret; every node of the region the same) and %s.pub.pem\n", prefix, prefix)
	return nil
}

// trustCmd manages the trust store.
func trustCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("trust: want add, add-gaen, add-efgs, list or remove")
	}
	var req api.TrustRequest
	var pubFile string
	switch args[0] {
	case "list":
		return list(ctx, "trust list", "/v1/federation", args[1:], stdout)
	case "add":
		c, err := subcommand("trust add", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&req.Region, "region", "", requiredMark+"the trusted region's name")
			fs.StringVar(&req.KeyID, "key-id", "", requiredMark+"id of its signing key (as its nodes' --signing-key-id)")
			fs.StringVar(&pubFile, "public-key-file", "", requiredMark+"its public key PEM (from its keygen)")
			fs.BoolVar(&req.Serve, "serve", true, "keep its batches and serve them to its apps")
			fs.BoolVar(&req.Merge, "merge", false, "merge its keys into this region's exports")
			fs.UintVar(&req.StartSeq, "start-seq", 0, "first batch to take when none is kept yet (default: the oldest its holders offer)")
		})
		if err != nil {
			return err
		}
		pem, err := os.ReadFile(pubFile)
		if err != nil {
			return fmt.Errorf("trust add: %w", err)
		}
		req.PublicKeyPEM = string(pem)
		if err := c.do(ctx, http.MethodPost, "/v1/admin/trust", req, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "trusting %s key %s\n", req.Region, req.KeyID)
		return nil
	case "add-gaen":
		return trustGAEN(ctx, args[1:], stdout)
	case "add-efgs":
		var country string
		c, err := subcommand("trust add-efgs", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&country, "country", "", requiredMark+"a country of the EU gateway (ISO 3166-1 alpha-2) whose keys this region imports from it (--efgs-url)")
		})
		if err != nil {
			return err
		}
		if err := c.do(ctx, http.MethodPost, "/v1/admin/trust/efgs", map[string]string{"country": country}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "importing %s's keys from the gateway\n", country)
		return nil
	case "remove":
		c, err := subcommand("trust remove", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&req.Region, "region", "", "the region")
			fs.StringVar(&req.KeyID, "key-id", "", "remove only this key")
		})
		if err != nil {
			return err
		}
		path := "/v1/admin/trust/" + url.PathEscape(req.Region) + "?key_id=" + url.QueryEscape(req.KeyID)
		return c.do(ctx, http.MethodDelete, path, nil, nil)
	}
	return fmt.Errorf("trust: unknown subcommand %q", args[0])
}

// trustGAEN trusts a GAEN key server (the reference key server or any
// other that publishes index.txt and signed export files): the leader
// imports its new files every --poll and merges their keys into this
// region's. Run again with every key in force to rotate its keys.
func trustGAEN(ctx context.Context, args []string, stdout io.Writer) error {
	var req api.GAENSourceRequest
	var poll time.Duration
	c, err := subcommand("trust add-gaen", args, func(fs *flag.FlagSet) {
		fs.StringVar(&req.Origin, "origin", "", requiredMark+"a name for the source (its keys are counted under it)")
		fs.StringVar(&req.IndexURL, "index-url", "", requiredMark+"URL of its index.txt")
		fs.StringVar(&req.ExportRoot, "export-root", "", requiredMark+"URL the index's file names are relative to")
		fs.DurationVar(&poll, "poll", 5*time.Minute, "how often the leader reads the index (10s to 24h)")
		fs.Var((*exportKeysFlag)(&req.Keys), "key", requiredMark+"a key that signs its files, as ID:VERSION:PEM-FILE (the key id and version its export.sig names; repeat for each key in force)")
	})
	if err != nil {
		return err
	}
	req.PollSeconds = uint32(min(max(poll/time.Second, 0), math.MaxUint32))
	if err := c.do(ctx, http.MethodPost, "/v1/admin/trust/gaen", req, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "importing %s from %s every %v (%d keys)\n", req.Origin, req.IndexURL, poll, len(req.Keys))
	return nil
}

// federationCmd shows what a region keeps, or relays one batch by hand:
// fetch it from any node that has it and import it here.
func federationCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("federation: want status or import")
	}
	switch args[0] {
	case "status":
		return list(ctx, "federation status", "/v1/admin/federation", args[1:], stdout)
	case "import":
		var from, origin string
		var seq uint
		c, err := subcommand("federation import", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&from, "from", "", requiredMark+"HTTP URL of any node (of any region) that has the batch")
			fs.StringVar(&origin, "origin", "", requiredMark+"the batch's region")
			fs.UintVar(&seq, "seq", 0, "the batch's number")
		})
		if err != nil {
			return err
		}
		data, err := fetchBatch(ctx, from, origin, seq)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.addr+"/v1/admin/federation/import", bytes.NewReader(data))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := c.http.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("import %s batch %d: %d %s", origin, seq, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		fmt.Fprintf(stdout, "%s\n", body)
		return nil
	}
	return fmt.Errorf("federation: unknown subcommand %q", args[0])
}

func fetchBatch(ctx context.Context, from, origin string, seq uint) ([]byte, error) {
	u := fmt.Sprintf("%s/v1/federation/batches/%s/%d", strings.TrimRight(from, "/"), url.PathEscape(origin), seq)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch batch: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %d %v", u, resp.StatusCode, err)
	}
	return data, nil
}

// writeNew writes a secret to a new file, mode 0600, never over an old one.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// exportKeysFlag reads --key ID:VERSION:PEM-FILE, once for each key.
type exportKeysFlag []api.ExportKeyRequest

func (f *exportKeysFlag) String() string {
	if f == nil {
		return ""
	}
	ids := make([]string, len(*f))
	for i, k := range *f {
		ids[i] = k.KeyID + ":" + k.KeyVersion
	}
	return strings.Join(ids, ",")
}

func (f *exportKeysFlag) Set(v string) error {
	id, rest, ok1 := strings.Cut(v, ":")
	version, file, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || id == "" || file == "" {
		return errors.New("want ID:VERSION:PEM-FILE")
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	*f = append(*f, api.ExportKeyRequest{KeyID: id, KeyVersion: version, PublicKeyPEM: string(pem)})
	return nil
}
