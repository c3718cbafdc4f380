package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/covid-backend/covid-backend/hsm"
)

// hsmCmd makes a P-256 (or Ed25519) key pair in a PKCS#11 token, or
// prints the public key of one, for pkcs11:object=LABEL in the key flags
// (docs/operations.md, "Export keys in an HSM"). An HSM's own tools make production keys; this
// serves SoftHSM2 and any token that lets an application make keys.
func hsmCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "keygen" && args[0] != "public" {
		return errors.New("hsm: want keygen or public")
	}
	name := "hsm " + args[0]
	var cfg hsm.Config
	var label, out string
	var edwards bool
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	describe(fs, name)
	fs.StringVar(&cfg.Module, "pkcs11-module", "/usr/lib/softhsm/libsofthsm2.so", "the token's PKCS#11 module (shared library)")
	fs.StringVar(&cfg.Token, "pkcs11-token", "", requiredMark+"the token's label")
	fs.StringVar(&cfg.PinFile, "pkcs11-pin-file", "", requiredMark+"a file holding the token's user PIN")
	fs.StringVar(&label, "label", "", requiredMark+"the key pair's label (the LABEL of pkcs11:object=LABEL)")
	fs.StringVar(&out, "out", "", "write the public key (PEM) to this file too, for the apps' key servers and tests")
	fs.BoolVar(&edwards, "ed25519", false, "an Ed25519 key pair (the federation signing key, --signing-key-file pkcs11:object=LABEL) instead of P-256")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := checkRequired(name, fs); err != nil {
		return err
	}
	tok, err := hsm.Open(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer tok.Close()
	var key crypto.Signer
	switch {
	case args[0] == "keygen" && edwards:
		key, err = tok.GenerateEd25519(label)
	case args[0] == "keygen":
		key, err = tok.Generate(label)
	case edwards:
		key, err = tok.Ed25519(label)
	default:
		key, err = tok.Signer(label)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if out != "" {
		if err := os.WriteFile(out, pub, 0o644); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	_, err = stdout.Write(pub)
	return err
}
