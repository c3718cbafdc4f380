// Command sink is the reference point of the upload benchmarks: an HTTP
// server that does only the work an upload cannot do without (read and
// decode the body, verify the certificate and the tekmac, answer in JSON)
// and stores nothing. BenchmarkUploadCPU compares the CPU a region spends
// per acknowledged upload with the sink's per answered one.
//
//	sink --addr 127.0.0.1:8080 --issuer I --audience A --kid K --app APP --public-key-file F
package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/covid-backend/covid-backend/fsm/fsmpb"
	"github.com/covid-backend/covid-backend/publish"
)

// authority is the one health authority the sink trusts.
type authority struct{ a *fsmpb.Authority }

func (s authority) Authority(issuer string) (*fsmpb.Authority, bool) {
	return s.a, issuer == s.a.GetIssuer()
}

func (s authority) AppKnown(appID string) bool { return appID == s.a.GetAppIds()[0] }

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	issuer := flag.String("issuer", "", "certificate issuer")
	audience := flag.String("audience", "", "certificate audience")
	kid := flag.String("kid", "", "certificate key id")
	app := flag.String("app", "", "health authority (app) id")
	keyFile := flag.String("public-key-file", "", "PEM public key of the certificates")
	flag.Parse()
	if err := run(*addr, *issuer, *audience, *kid, *app, *keyFile); err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		os.Exit(1)
	}
}

func run(addr, issuer, audience, kid, app, keyFile string) error {
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return errors.New("public key file: no PEM block")
	}
	if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
		return fmt.Errorf("public key file: %w", err)
	}
	auth := authority{&fsmpb.Authority{Issuer: issuer, Audience: audience, AppIds: []string{app},
		Keys: []*fsmpb.AuthorityKey{{Kid: kid, PublicKeyDer: block.Bytes}}}}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/v1/publish", func(c *gin.Context) { publishHandler(c, auth) })
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	slog.Info("sink listening", "addr", addr)
	srv := &http.Server{Addr: addr, Handler: r, ReadHeaderTimeout: 5 * time.Second}
	return srv.ListenAndServe()
}

func publishHandler(c *gin.Context, auth authority) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, publish.MaxBodyBytes))
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	req, err := publish.DecodeRequest(body)
	if err == nil {
		var v *publish.Verified
		if v, err = publish.Validate(req, auth, time.Now()); err == nil {
			c.JSON(http.StatusOK, publish.Response{InsertedExposures: len(v.Keys), Padding: publish.Padding()})
			return
		}
	}
	var pe *publish.Error
	if errors.As(err, &pe) {
		c.JSON(pe.Status, gin.H{"error": pe.Message, "code": pe.Code})
		return
	}
	c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
}
