// Package servingcert keeps the certificate the public HTTPS listener
// serves (the app and admin API), loaded from a certificate and a key file
// and reloaded when they change or on SIGHUP, so that an operator renews
// it without a restart: connections already open keep theirs, new
// handshakes get the new one.
package servingcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/covid-backend/covid-backend/membertls"
)

// Cert is a certificate and key pair read from files.
type Cert struct {
	certFile, keyFile string
	current           atomic.Pointer[loaded]
}

// loaded is one reading of the files.
type loaded struct {
	cert            *tls.Certificate
	certMod, keyMod time.Time
}

// Load reads the pair; the key file must be readable by its owner only.
func Load(certFile, keyFile string) (*Cert, error) {
	c := &Cert{certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again. On any error the certificate in use stays.
func (c *Cert) Reload() error {
	if err := membertls.CheckSecretFile(c.keyFile); err != nil {
		return fmt.Errorf("https key: %w", err)
	}
	certMod, err1 := modTime(c.certFile)
	keyMod, err2 := modTime(c.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("https certificate: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("https certificate %s: %w", c.certFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("https certificate %s: %w", c.certFile, err)
		}
	}
	c.current.Store(&loaded{cert: &pair, certMod: certMod, keyMod: keyMod})
	return nil
}

// Leaf is the certificate in use.
func (c *Cert) Leaf() *x509.Certificate { return c.current.Load().cert.Leaf }

// ServerConfig is the TLS configuration of the HTTPS listener: TLS 1.2 or
// newer, the certificate in use at each handshake. net/http adds HTTP/2.
func (c *Cert) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.current.Load().cert, nil
		},
	}
}

// changed tells whether either file's modification time moved since the
// last reading.
func (c *Cert) changed() bool {
	cur := c.current.Load()
	certMod, err1 := modTime(c.certFile)
	keyMod, err2 := modTime(c.keyFile)
	return err1 == nil && err2 == nil && (!certMod.Equal(cur.certMod) || !keyMod.Equal(cur.keyMod))
}

// Watch reloads on SIGHUP and when the files change (checked every
// interval) until ctx ends, logging each outcome.
func (c *Cert) Watch(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-t.C:
			if !c.changed() {
				continue
			}
		}
		if err := c.Reload(); err != nil {
			logger.Error("https certificate not reloaded; the previous one stays in use", "err", err)
			continue
		}
		logger.Info("https certificate reloaded", "serial", c.Leaf().SerialNumber.Text(16), "not_after", c.Leaf().NotAfter.UTC())
	}
}

func modTime(path string) (time.Time, error) {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}, err
	}
	return st.ModTime(), nil
}
