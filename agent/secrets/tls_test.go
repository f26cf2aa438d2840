package secrets

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

const testFQDN = "redis-0.redis-headless.default.svc.cluster.local"

// TestLoadTLS: each bad Secret is refused with an error naming the file,
// what is wrong and the fix.
func TestLoadTLS(t *testing.T) {
	ca, other := proctest.NewCA(t, "test-ca"), proctest.NewCA(t, "other-ca")
	good := proctest.Leaf{CommonName: "redis", DNS: []string{"*.redis-headless.default.svc.cluster.local"}}
	cases := map[string]struct {
		reason string
		setup  func(t *testing.T, dir string) TLSSettings
		want   []string // substrings of the error; none means it loads
	}{
		"good": {
			reason: "a wildcard for the headless Service covers the pod FQDN",
			setup:  func(t *testing.T, dir string) TLSSettings { return settings(ca.WriteSecret(t, dir, good)) },
		},
		"missing key file": {
			reason: "an unreadable file names its flag and path",
			setup: func(t *testing.T, dir string) TLSSettings {
				s := settings(ca.WriteSecret(t, dir, good))
				os.Remove(s.KeyFile)
				return s
			},
			want: []string{"--tls-key-file (REDIS_HA_TLS_KEY_FILE)", "tls.key", "no such file", "mount the TLS Secret"},
		},
		"key of another certificate": {
			reason: "tls.key from one Secret version, tls.crt from another",
			setup: func(t *testing.T, dir string) TLSSettings {
				s := settings(ca.WriteSecret(t, dir, good))
				_, k := ca.Issue(t, good)
				proctest.WriteFile(t, s.KeyFile, k)
				return s
			},
			want: []string{"does not match the certificate", "tls.key", "tls.crt", "same Secret"},
		},
		"expired": {
			reason: "an expired certificate names its expiry and the renewal",
			setup: func(t *testing.T, dir string) TLSSettings {
				l := good
				l.NotBefore, l.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
				return settings(ca.WriteSecret(t, dir, l))
			},
			want: []string{"tls.crt", "expired at", "renew it"},
		},
		"signed by another CA": {
			reason: "ca.crt is not the issuer of tls.crt",
			setup: func(t *testing.T, dir string) TLSSettings {
				s := settings(ca.WriteSecret(t, dir, good))
				proctest.WriteFile(t, s.CAFile, other.PEM)
				return s
			},
			want: []string{"tls.crt", "not signed by a CA in --tls-ca-file", "ca.crt", "test-ca"},
		},
		"CA file is not PEM": {
			setup: func(t *testing.T, dir string) TLSSettings {
				s := settings(ca.WriteSecret(t, dir, good))
				proctest.WriteFile(t, s.CAFile, []byte("not a certificate"))
				return s
			},
			want: []string{"--tls-ca-file", "ca.crt", "holds no PEM certificate"},
		},
		"no SAN for the pod": {
			reason: "peers verify the pod's FQDN",
			setup: func(t *testing.T, dir string) TLSSettings {
				return settings(ca.WriteSecret(t, dir, proctest.Leaf{CommonName: "redis", DNS: []string{"redis-master.default.svc"}}))
			},
			want: []string{"does not cover " + testFQDN, "redis-master.default.svc", "*.redis-headless.default.svc.cluster.local"},
		},
		"server auth only": {
			reason: "replicas and Sentinels present the pod's certificate as a client",
			setup: func(t *testing.T, dir string) TLSSettings {
				l := good
				l.Usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
				return settings(ca.WriteSecret(t, dir, l))
			},
			want: []string{"does not allow client auth", "client auth"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := tc.setup(t, t.TempDir())
			_, err := loadTLS(s, []string{testFQDN}, time.Now())
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("%s: %v", tc.reason, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s: loaded; want an error with %q", tc.reason, tc.want)
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q lacks %q", tc.reason, err, w)
				}
			}
		})
	}
}

func TestTLSSettingsValidate(t *testing.T) {
	cases := map[string]struct {
		s    TLSSettings
		want string
	}{
		"off":                     {s: TLSSettings{}},
		"all three":               {s: TLSSettings{CertFile: "/t/tls.crt", KeyFile: "/t/tls.key", CAFile: "/t/ca.crt"}},
		"no key":                  {s: TLSSettings{CertFile: "/t/tls.crt", CAFile: "/t/ca.crt"}, want: "--tls-key-file (REDIS_HA_TLS_KEY_FILE) is empty"},
		"plaintext port, no TLS":  {s: TLSSettings{PlaintextPort: 6380}, want: "apply only with TLS on"},
		"plaintext on TLS port":   {s: TLSSettings{CertFile: "/t/tls.crt", KeyFile: "/t/tls.key", CAFile: "/t/ca.crt", PlaintextPort: 6379}, want: "is the TLS port"},
		"path with a space":       {s: TLSSettings{CertFile: "/t/my tls.crt", KeyFile: "/t/tls.key", CAFile: "/t/ca.crt"}, want: "contains a space"},
		"migration port accepted": {s: TLSSettings{CertFile: "/t/tls.crt", KeyFile: "/t/tls.key", CAFile: "/t/ca.crt", PlaintextPort: 6380, SentinelPlaintextPort: 26380}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.s.Validate(6379, 26379)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestTLSFilesRenewal: a Secret update (the kubelet swaps ..data) is picked
// up by the watcher; a broken update is refused and the old files stay.
func TestTLSFilesRenewal(t *testing.T) {
	ca := proctest.NewCA(t, "test-ca")
	dir := t.TempDir()
	l := proctest.Leaf{CommonName: "redis", DNS: []string{testFQDN}}
	swap := func(ts string, certPEM, keyPEM []byte) {
		d := filepath.Join(dir, ts)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		proctest.WriteFile(t, filepath.Join(d, "tls.crt"), certPEM)
		proctest.WriteFile(t, filepath.Join(d, "tls.key"), keyPEM)
		proctest.WriteFile(t, filepath.Join(d, "ca.crt"), ca.PEM)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(ts, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	c1, k1 := ca.Issue(t, l)
	swap("..1", c1, k1)
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	s := settings(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt"))
	clk := clocktesting.NewFakeClock(time.Now())
	files, err := NewTLSFiles(s, []string{testFQDN}, clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = files.Run(ctx, zerolog.Nop(), clk, time.Hour) }()
	// The periodic re-read's ticker is made after the directory watch is
	// added: once the fake clock has it, fsnotify sees the swaps below
	// (the clock never moves, so only fsnotify can report them).
	proctest.Eventually(t, 5*time.Second, func() error {
		if !clk.HasWaiters() {
			return errors.New("no ticker yet")
		}
		return nil
	}, "the watcher started")
	serial := func() string { return files.current().cert.Leaf.SerialNumber.String() }
	first := serial()

	_, kOther := ca.Issue(t, l)
	swap("..2", c1, kOther) // a half-done update: the key does not match
	c3, k3 := ca.Issue(t, l)
	swap("..3", c3, k3)
	select {
	case <-files.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported 10 s after the Secret's ..data was swapped")
	}
	if got := serial(); got == first {
		t.Fatalf("serial still %s after renewal", got)
	}
	if want := files.current().cert.Leaf.SerialNumber; want.String() != proctest.MustLeaf(t, c3).SerialNumber.String() {
		t.Fatalf("loaded serial %s, want the renewed certificate's %s", want, proctest.MustLeaf(t, c3).SerialNumber)
	}
}

func settings(cert, key, ca string) TLSSettings {
	return TLSSettings{CertFile: cert, KeyFile: key, CAFile: ca, AuthClients: "yes"}
}

func TestTLSFilesRefusesBadRenewal(t *testing.T) {
	ca := proctest.NewCA(t, "test-ca")
	l := proctest.Leaf{CommonName: "redis", DNS: []string{testFQDN}}
	s := settings(ca.WriteSecret(t, t.TempDir(), l))
	files, err := NewTLSFiles(s, []string{testFQDN}, clocktesting.NewFakeClock(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New("test", "sentinel")
	files.Observe(m)
	first := files.current().cert.Leaf
	if got := testutil.ToFloat64(m.TLSCertNotAfter); got != float64(first.NotAfter.Unix()) {
		t.Errorf("expiry gauge %v, want %d", got, first.NotAfter.Unix())
	}
	_, otherKey := ca.Issue(t, l)
	proctest.WriteFile(t, s.KeyFile, otherKey)
	files.reload(zerolog.Nop())
	if files.current().cert.Leaf != first || testutil.ToFloat64(m.TLSFilesRefused) != 1 {
		t.Fatalf("a mismatched key was not refused (refused %v)", testutil.ToFloat64(m.TLSFilesRefused))
	}
	l.NotAfter = time.Now().Add(48 * time.Hour)
	c, k := ca.Issue(t, l)
	proctest.WriteFile(t, s.CertFile, c)
	proctest.WriteFile(t, s.KeyFile, k)
	files.reload(zerolog.Nop())
	got := files.current().cert.Leaf
	if got.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("a good renewal was not taken")
	}
	if v := testutil.ToFloat64(m.TLSCertNotAfter); v != float64(got.NotAfter.Unix()) {
		t.Errorf("expiry gauge %v after renewal, want %d", v, got.NotAfter.Unix())
	}
	select {
	case <-files.Changed():
	default:
		t.Error("no change reported after a good renewal")
	}
}
