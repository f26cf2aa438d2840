package proctest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"testing"
	"time"
)

// WriteFile writes b to path (mode 0600) or fails the test.
func WriteFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// MustLeaf parses the first certificate of a PEM file's contents or fails
// the test.
func MustLeaf(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	m, err := loadTLSLeaf(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func loadTLSLeaf(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	return x509.ParseCertificate(b.Bytes)
}

// ServedSerial is the serial number of the certificate a TLS server at addr
// presents, or the dial error's text.
func ServedSerial(t *testing.T, addr string, tc *tls.Config) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, tc)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
