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

// hsmCmd makes a P-256 key pair in a PKCS#11 token, or prints the public
// key of one, for --export-key-file pkcs11:object=LABEL (docs/operations.md,
// "Export keys in an HSM"). An HSM's own tools make production keys; this
// serves SoftHSM2 and any token that lets an application make keys.
func hsmCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "keygen" && args[0] != "public" {
		return errors.New("hsm: want keygen or public")
	}
	name := "hsm " + args[0]
	var cfg hsm.Config
	var label, out string
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	describe(fs, name)
	fs.StringVar(&cfg.Module, "pkcs11-module", "/usr/lib/softhsm/libsofthsm2.so", "the token's PKCS#11 module (shared library)")
	fs.StringVar(&cfg.Token, "pkcs11-token", "", requiredMark+"the token's label")
	fs.StringVar(&cfg.PinFile, "pkcs11-pin-file", "", requiredMark+"a file holding the token's user PIN")
	fs.StringVar(&label, "label", "", requiredMark+"the key pair's label (the LABEL of pkcs11:object=LABEL)")
	fs.StringVar(&out, "out", "", "write the public key (PEM) to this file too, for the apps' key servers and tests")
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
	if args[0] == "keygen" {
		key, err = tok.Generate(label)
	} else {
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
