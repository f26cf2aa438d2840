package secrets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
	"github.com/redis-ha-agent/redis-ha-agent/sentinelconf"
)

// TLSSettings switch TLS on for redis-server, redis-sentinel and the
// agent's own clients. The three files are what cert-manager (or
// `kubectl create secret tls` plus ca.crt) puts in a Secret volume.
type TLSSettings struct {
	CertFile    string `name:"tls-cert-file" env:"REDIS_HA_TLS_CERT_FILE" help:"PEM certificate (tls.crt of a Secret volume) that redis-server and Sentinel serve and present to peers, and the agent presents as a client; setting the three --tls-*-file flags switches TLS on. Watched for changes."`
	KeyFile     string `name:"tls-key-file" env:"REDIS_HA_TLS_KEY_FILE" help:"PEM private key of --tls-cert-file (tls.key)."`
	CAFile      string `name:"tls-ca-file" env:"REDIS_HA_TLS_CA_FILE" help:"PEM CA certificate(s) (ca.crt) every server and client certificate is verified against."`
	AuthClients string `name:"tls-auth-clients" env:"REDIS_HA_TLS_AUTH_CLIENTS" enum:"yes,optional,no" default:"yes" help:"Written as tls-auth-clients: yes requires every client to present a certificate signed by the CA; optional or no let clients without one in (they still need the password)."`
	// Plaintext ports are for a migration: clients that have not moved to
	// TLS keep a port, while peers, Sentinels and the agent use TLS only.
	PlaintextPort         int `name:"plaintext-port" env:"REDIS_HA_PLAINTEXT_PORT" default:"0" help:"With TLS on, redis-server also serves plaintext on this port (a migration); 0 serves TLS only."`
	SentinelPlaintextPort int `name:"sentinel-plaintext-port" env:"REDIS_HA_SENTINEL_PLAINTEXT_PORT" default:"0" help:"With TLS on, redis-sentinel also serves plaintext on this port (a migration); 0 serves TLS only."`
}

// Enabled: any TLS file is set (validate requires all three).
func (s TLSSettings) Enabled() bool {
	return s.CertFile != "" || s.KeyFile != "" || s.CAFile != ""
}

func (s TLSSettings) authClients() string {
	if s.AuthClients == "" {
		return "yes"
	}
	return s.AuthClients
}

// Check validates the settings for servers on these TLS ports.
func (s TLSSettings) Check(redisPort, sentinelPort int) error {
	return s.Validate(redisPort, sentinelPort)
}

func (s TLSSettings) Validate(redisPort, sentinelPort int) error {
	if !s.Enabled() {
		if s.PlaintextPort != 0 || s.SentinelPlaintextPort != 0 {
			return fmt.Errorf("--plaintext-port (REDIS_HA_PLAINTEXT_PORT) and --sentinel-plaintext-port (REDIS_HA_SENTINEL_PLAINTEXT_PORT) apply only with TLS on: set --tls-cert-file, --tls-key-file and --tls-ca-file, or unset them")
		}
		return nil
	}
	var missing []string
	for _, f := range []struct{ flag, value string }{
		{"--tls-cert-file (REDIS_HA_TLS_CERT_FILE)", s.CertFile},
		{"--tls-key-file (REDIS_HA_TLS_KEY_FILE)", s.KeyFile},
		{"--tls-ca-file (REDIS_HA_TLS_CA_FILE)", s.CAFile},
	} {
		switch {
		case f.value == "":
			missing = append(missing, f.flag)
		case !sentinelconf.RewriteSafe(f.value):
			return fmt.Errorf("%s %q contains a space, a quote or a control character: mount the Secret at a path without them", f.flag, f.value)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("TLS needs all three files, and %s is empty: set it (a Secret volume's tls.crt, tls.key and ca.crt), or unset every --tls-*-file flag for plaintext", strings.Join(missing, " and "))
	}
	for _, p := range []struct {
		flag       string
		port, tlsP int
	}{
		{"--plaintext-port (REDIS_HA_PLAINTEXT_PORT)", s.PlaintextPort, redisPort},
		{"--sentinel-plaintext-port (REDIS_HA_SENTINEL_PLAINTEXT_PORT)", s.SentinelPlaintextPort, sentinelPort},
	} {
		if p.port < 0 || p.port > 65535 {
			return fmt.Errorf("%s %d is not a TCP port (0 closes plaintext)", p.flag, p.port)
		}
		if p.port != 0 && (p.port == redisPort || p.port == sentinelPort) {
			return fmt.Errorf("%s %d is the TLS port of redis-server or Sentinel: pick another port for plaintext clients, or 0", p.flag, p.port)
		}
	}
	return nil
}

// RedisLines are the redis.conf lines of TLS: the TLS port is the one
// peers, Sentinels and the agent use; plaintext is closed unless a
// migration keeps a port open.
func (s TLSSettings) RedisLines(port int, cluster bool) []string {
	lines := []string{
		fmt.Sprintf("tls-port %d", port),
		fmt.Sprintf("port %d", s.PlaintextPort),
		"tls-cert-file " + QuoteConf(s.CertFile),
		"tls-key-file " + QuoteConf(s.KeyFile),
		"tls-ca-cert-file " + QuoteConf(s.CAFile),
		"tls-auth-clients " + s.authClients(),
		"tls-replication yes",
	}
	if cluster {
		lines = append(lines, "tls-cluster yes")
	}
	return lines
}

// SentinelParams is the TLS part of sentinel.conf; nil when TLS is off.
func (s TLSSettings) SentinelParams() *sentinelconf.TLS {
	if !s.Enabled() {
		return nil
	}
	return &sentinelconf.TLS{CertFile: s.CertFile, KeyFile: s.KeyFile, CAFile: s.CAFile, AuthClients: s.authClients(), PlaintextPort: s.SentinelPlaintextPort}
}

// tlsMaterial is one consistent read of the three files.
type tlsMaterial struct {
	cert tls.Certificate // Leaf set
	pool *x509.CertPool
	sum  [32]byte // of the three files, to notice a change
}

// loadTLS reads and checks the files: the key matches the certificate, the
// certificate is valid now, signed by the CA, usable by servers and (for
// mutual TLS) clients, and covers names — the names peers dial this pod by.
// Errors name the file, what is wrong and the fix.
func loadTLS(s TLSSettings, names []string, now time.Time) (*tlsMaterial, error) {
	read := func(flag, path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s %s: %w; mount the TLS Secret there (keys tls.crt, tls.key, ca.crt), or unset every --tls-*-file flag for plaintext", flag, path, err)
		}
		return b, nil
	}
	certPEM, err := read("--tls-cert-file (REDIS_HA_TLS_CERT_FILE)", s.CertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := read("--tls-key-file (REDIS_HA_TLS_KEY_FILE)", s.KeyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := read("--tls-ca-file (REDIS_HA_TLS_CA_FILE)", s.CAFile)
	if err != nil {
		return nil, err
	}
	m := &tlsMaterial{pool: x509.NewCertPool(), sum: sha256.Sum256(bytes.Join([][]byte{certPEM, keyPEM, caPEM}, []byte{0}))}
	if !m.pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--tls-ca-file (REDIS_HA_TLS_CA_FILE) %s holds no PEM certificate: it must be the CA certificate that issued --tls-cert-file (ca.crt of the Secret)", s.CAFile)
	}
	m.cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil && strings.Contains(err.Error(), "does not match") {
		return nil, fmt.Errorf("the key in --tls-key-file (REDIS_HA_TLS_KEY_FILE) %s does not match the certificate in --tls-cert-file (REDIS_HA_TLS_CERT_FILE) %s (%w): mount tls.key and tls.crt of the same Secret", s.KeyFile, s.CertFile, err)
	}
	if err != nil {
		return nil, fmt.Errorf("parse --tls-cert-file (REDIS_HA_TLS_CERT_FILE) %s and --tls-key-file (REDIS_HA_TLS_KEY_FILE) %s: %w; both must be PEM (tls.crt and tls.key of a kubernetes.io/tls Secret)", s.CertFile, s.KeyFile, err)
	}
	if err := checkLeaf(s, m, names, now); err != nil {
		return nil, err
	}
	return m, nil
}

// checkLeaf checks the certificate itself against the CA, the clock and
// the names.
func checkLeaf(s TLSSettings, m *tlsMaterial, names []string, now time.Time) error {
	leaf := m.cert.Leaf
	what := fmt.Sprintf("the certificate in --tls-cert-file (REDIS_HA_TLS_CERT_FILE) %s (subject %q)", s.CertFile, leaf.Subject.String())
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("%s expired at %s: renew it (with cert-manager: `kubectl describe certificate` shows why it was not renewed); the agent picks up renewed files without a restart", what, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("%s is not valid before %s: check the clocks of the issuer and this node", what, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, der := range m.cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	opts := x509.VerifyOptions{Roots: m.pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("%s, issued by %q, is not signed by a CA in --tls-ca-file (REDIS_HA_TLS_CA_FILE) %s (%w): mount the ca.crt of the issuer that signed it", what, leaf.Issuer.String(), s.CAFile, err)
	}
	if err := checkUsages(s, leaf, what); err != nil {
		return err
	}
	for _, n := range names {
		if err := leaf.VerifyHostname(n); err != nil {
			return fmt.Errorf("%s does not cover %s, the name peers and the agent dial this pod by (its SANs: DNS %v, IP %v): issue it with a SAN for it, e.g. the headless Service wildcard *.%s", what, n, leaf.DNSNames, leaf.IPAddresses, wildcardParent(n))
		}
	}
	return nil
}

// checkUsages: a certificate that lists extended key usages must allow
// serving, and, when servers ask for client certificates, being a client:
// replicas and Sentinels present it to their peers.
func checkUsages(s TLSSettings, leaf *x509.Certificate, what string) error {
	if len(leaf.ExtKeyUsage) == 0 {
		return nil
	}
	has := func(u x509.ExtKeyUsage) bool {
		for _, e := range leaf.ExtKeyUsage {
			if e == u || e == x509.ExtKeyUsageAny {
				return true
			}
		}
		return false
	}
	if !has(x509.ExtKeyUsageServerAuth) {
		return fmt.Errorf("%s does not allow server auth: add `server auth` to the Certificate's usages", what)
	}
	if s.authClients() != "no" && !has(x509.ExtKeyUsageClientAuth) {
		return fmt.Errorf("%s does not allow client auth, yet replicas, Sentinels and the agent present it to servers with --tls-auth-clients %s: add `client auth` to the Certificate's usages", what, s.authClients())
	}
	return nil
}

func wildcardParent(host string) string {
	if _, rest, ok := strings.Cut(host, "."); ok {
		return rest
	}
	return host
}

// TLSFiles is the certificate material of the agent's clients, re-read when
// the files change (cert-manager renews them in place in the Secret
// volume). A nil *TLSFiles means plaintext.
type TLSFiles struct {
	s       TLSSettings
	names   []string
	clk     clock.PassiveClock
	mu      sync.RWMutex
	m       *tlsMaterial
	changed chan struct{}
	metrics *metrics.Metrics // nil: none
}

// Observe exports the certificate's expiry and refused re-reads to m.
func (t *TLSFiles) Observe(m *metrics.Metrics) {
	if t == nil || m == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.metrics = m
	m.TLSCertNotAfter.Set(float64(t.m.cert.Leaf.NotAfter.Unix()))
}

// NewTLSFiles reads and checks the files once; nil when TLS is off. names
// are the names this pod's certificate must cover.
func NewTLSFiles(s TLSSettings, names []string, clk clock.PassiveClock) (*TLSFiles, error) {
	if !s.Enabled() {
		return nil, nil
	}
	m, err := loadTLS(s, names, clk.Now())
	if err != nil {
		return nil, err
	}
	return &TLSFiles{s: s, names: names, clk: clk, m: m, changed: make(chan struct{}, 1)}, nil
}

// Changed receives after the files changed and were loaded; nil (never
// receives) when TLS is off.
func (t *TLSFiles) Changed() <-chan struct{} {
	if t == nil {
		return nil
	}
	return t.changed
}

// Run re-reads the files on change and every resync until ctx ends. New
// files that fail the checks are refused and logged, and the previous ones
// stay in use: connections keep working until the old certificate expires,
// and the error says what to fix before then.
func (t *TLSFiles) Run(ctx context.Context, log zerolog.Logger, clk clock.WithTicker, resync time.Duration) error {
	if t == nil {
		<-ctx.Done()
		return nil
	}
	log = log.With().Str("component", "tls").Logger()
	return watchFiles(ctx, log, clk, resync, "--tls-*-file", []string{t.s.CertFile, t.s.KeyFile, t.s.CAFile}, func() { t.reload(log) })
}

func (t *TLSFiles) reload(log zerolog.Logger) {
	m, err := loadTLS(t.s, t.names, t.clk.Now())
	t.mu.Lock()
	mx := t.metrics
	if err != nil {
		t.mu.Unlock()
		log.Error().Err(err).Msg("keeping the previous TLS files")
		if mx != nil {
			mx.TLSFilesRefused.Inc()
		}
		return
	}
	same := m.sum == t.m.sum
	t.m = m
	t.mu.Unlock()
	if mx != nil {
		mx.TLSCertNotAfter.Set(float64(m.cert.Leaf.NotAfter.Unix()))
	}
	if same {
		return
	}
	log.Info().Str("cert_file", t.s.CertFile).Time("not_after", m.cert.Leaf.NotAfter).Msg("TLS files changed; new connections use them")
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

func (t *TLSFiles) current() *tlsMaterial {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m
}

// clientConfig verifies the server against the CA under serverName and
// presents this pod's certificate when the server asks for one. It is built
// at each dial, so renewed files apply to the next connection.
func (t *TLSFiles) clientConfig(serverName string) *tls.Config {
	m := t.current()
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		RootCAs:    m.pool,
		// Always this certificate, whatever CA names the server lists:
		// the pod has this one only.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &m.cert, nil },
	}
}

// handshake runs the TLS client handshake on c, naming what was verified
// in the error. It never falls back to plaintext.
func (t *TLSFiles) Handshake(ctx context.Context, c net.Conn, addr, serverName string) (net.Conn, error) {
	tc := tls.Client(c, t.clientConfig(serverName))
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		var rec tls.RecordHeaderError
		var nerr net.Error
		if errors.As(err, &rec) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout() {
			return nil, fmt.Errorf("TLS handshake with %s: no TLS answer (%w); the server may serve plaintext only, i.e. run without the TLS lines of the agent's include", addr, err)
		}
		return nil, fmt.Errorf("TLS handshake with %s, verifying it as %s against --tls-ca-file %s: %w", addr, serverName, t.s.CAFile, err)
	}
	return tc, nil
}
