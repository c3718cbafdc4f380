package membertls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// ALPN protocols of the member port: raft, and member-to-member HTTP
// (forwarded writes, joins, clocks) on the same port and credential.
const (
	ProtoRaft   = "covid-raft/1"
	ProtoMember = "covid-member/1"
)

// Credentials are a member's certificate and the region CA it trusts.
type Credentials struct {
	cert tls.Certificate
	pool *x509.CertPool
	// Leaf is the member's own certificate.
	Leaf *x509.Certificate
}

// Load reads a member credential. The key file must not be readable by
// anyone but its owner (mode 0600 or narrower).
func Load(caFile, certFile, keyFile string) (*Credentials, error) {
	if err := CheckSecretFile(keyFile); err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("region CA: %w", err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return FromPEM(caPEM, PEM{Cert: certPEM, Key: keyPEM})
}

// FromPEM makes credentials of a CA certificate and a node certificate
// with its key; the node certificate must be signed by the CA.
func FromPEM(caPEM []byte, node PEM) (*Credentials, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("region CA: no certificate in the file")
	}
	cert, err := tls.X509KeyPair(node.Cert, node.Key)
	if err != nil {
		return nil, fmt.Errorf("node certificate and key: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("node certificate is not a client certificate of the region CA: %w", err)
	}
	return &Credentials{cert: cert, pool: pool, Leaf: leaf}, nil
}

// ServerConfig accepts only peers that present a certificate of the region
// CA, over TLS 1.3.
func (c *Credentials) ServerConfig(protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.pool,
		NextProtos:   protos,
	}
}

// ClientConfig dials a member at addr (host:port), verifying that its
// certificate is of the region CA and names that host.
func (c *Credentials) ClientConfig(addr string, protos ...string) *tls.Config {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		RootCAs:      c.pool,
		ServerName:   host,
		NextProtos:   protos,
	}
}

// CheckSecretFile refuses a secret file that others than its owner may
// read or write.
func CheckSecretFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o: a secret must be readable by its owner only (chmod 600)", path, mode)
	}
	return nil
}
