package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/node"
	"github.com/covid-backend/covid-backend/publish"
)

// The development health authority that `serve --dev` registers
// and `dev-upload` signs with. Never use it in production.
const (
	devIssuer   = "dev.covid-backend.local"
	devAudience = "dev-audience"
	devKid      = "dev-1"
	devApp      = "dev.covid-backend.app"
	devKeyFile  = "dev-authority-key.pem"
)

// devAuthorityJob makes sure a development authority key exists in the data
// dir and returns a leader job that registers its public key.
func devAuthorityJob(dataDir string) (node.LeaderJob, error) {
	key, err := loadOrCreateECKey(filepath.Join(dataDir, devKeyFile))
	if err != nil {
		return nil, fmt.Errorf("development authority: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, n *node.Node) error {
		if a, ok := n.FSM().Authority(devIssuer); ok {
			for _, k := range a.GetKeys() {
				if k.GetKid() == devKid && bytes.Equal(k.GetPublicKeyDer(), der) {
					return nil
				}
			}
		}
		return command.PutAuthority(ctx, n, &fsmpb.Authority{
			Issuer: devIssuer, Audience: devAudience, AppIds: []string{devApp},
			Keys: []*fsmpb.AuthorityKey{{Kid: devKid, PublicKeyDer: der}},
		})
	}, nil
}

// removeDevAuthority is the leader job of a node started without --dev:
// a development authority left from an earlier start with --dev is
// removed, so that its key (in a data dir, made for trying things out)
// authorizes no upload in a region that now runs for real.
func removeDevAuthority(ctx context.Context, n *node.Node) error {
	if _, ok := n.FSM().Authority(devIssuer); !ok {
		return nil
	}
	n.Config().Logger.Warn("removing the development health authority: this node runs without --dev", "issuer", devIssuer)
	err := command.RemoveAuthority(ctx, n, devIssuer, "")
	var refused *command.Error
	if errors.As(err, &refused) && refused.Code == command.CodeUnknownAuthority {
		return nil // removed meanwhile
	}
	return err
}

func loadOrCreateECKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		return key, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	}
	if err != nil {
		return nil, err
	}
	return parseECKey(b)
}

func parseECKey(b []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block in key file")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("key is not ECDSA")
	}
	return ec, nil
}

// devUpload publishes random keys signed by the development authority.
func devUpload(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dev-upload", flag.ContinueOnError)
	describe(fs, "dev-upload")
	addr := fs.String("addr", "http://127.0.0.1:8080", "HTTP URL of any node")
	keyFile := fs.String("key-file", "data/"+devKeyFile, "the development authority's private key (made by serve --dev)")
	count := fs.Int("keys", 14, "how many daily keys to upload (1..14)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("dev-upload: %w (start the node with --dev, or pass --key-file)", err)
	}
	key, err := parseECKey(b)
	if err != nil {
		return fmt.Errorf("dev-upload: %s: %w", *keyFile, err)
	}
	signer := publish.Signer{Key: key, Issuer: devIssuer, Audience: devAudience, Kid: devKid, AppID: devApp}
	req, err := signer.RandomUpload(*count, time.Now())
	if err != nil {
		return fmt.Errorf("dev-upload: %w", err)
	}
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*addr, "/")+"/v1/publish", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return fmt.Errorf("dev-upload: %w", err)
	}
	defer resp.Body.Close()
	var out publish.Response
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("dev-upload: decode answer (%d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("dev-upload: %d %s: %s", resp.StatusCode, out.Code, out.ErrorMessage)
	}
	fmt.Fprintf(stdout, "published %d keys (inserted %d) to %s\n", len(req.Keys), out.InsertedExposures, *addr)
	for _, k := range req.Keys {
		fmt.Fprintf(stdout, "  %s start=%d period=%d\n", k.Key, k.IntervalNumber, k.IntervalCount)
	}
	return nil
}
