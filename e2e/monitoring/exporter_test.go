package monitoring

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/images"
)

// The mount paths components/redis-exporter and components/tls give the
// exporter; the tests put the same files in temporary directories.
const (
	exporterAuthDir = "/etc/redis-exporter/auth"
	tlsDir          = "/etc/redis-ha/tls"
)

// exporterBin is redis_exporter from the image e2e/images builds for the
// real nodes (the same binary), built once per test binary.
var exporterBin struct {
	once      sync.Once
	path, err string
}

// redisExporter returns the path of the image's redis_exporter, building
// the image into the e2e cache first if it is not there (go install of its
// module: the Go toolchain and the module proxy, or a module cache).
func redisExporter(t *testing.T) string {
	t.Helper()
	exporterBin.once.Do(func() {
		var log bytes.Buffer
		imgs, err := images.Build(context.Background(), images.Options{Only: []string{"redis-exporter"}, Log: &log})
		if err != nil {
			exporterBin.err = fmt.Sprintf("build the redis_exporter image (e2e/images, `cd e2e && go run ./cmd/images build --only redis-exporter` shows the same): %v\n%s", err, log.String())
			return
		}
		dir := filepath.Join(cacheDir(t), "monitoring", images.EngineName(imgs[0].Ref))
		if err := images.Extract(imgs[0], dir); err != nil {
			exporterBin.err = err.Error()
			return
		}
		exporterBin.path = filepath.Join(dir, images.ExporterBinary)
	})
	if exporterBin.err != "" {
		t.Fatal(exporterBin.err)
	}
	return exporterBin.path
}

// exporterEnv is the environment of the redis-exporter container in the
// build of dir, as the kubelet would hand it to the process: $(VAR)
// references expanded from the container's earlier variables, the
// downward-API ones given by pod. Mount paths are moved to the test's
// directories, localhost:6379 to the test server's port, and the listen
// address to a free loopback port (returned), the only variable added.
func exporterEnv(t *testing.T, dir string, pod map[string]string, authDir, certDir string, redisPort int) (env []string, listen string) {
	t.Helper()
	sts := find(t, build(t, promcheck(t), dir), "StatefulSet", "")
	cs, _ := get(sts, "spec", "template", "spec", "containers").([]any)
	var c map[string]any
	for _, x := range cs {
		if x.(map[string]any)["name"] == "redis-exporter" {
			c = x.(map[string]any)
		}
	}
	if c == nil {
		t.Fatalf("%s: no redis-exporter container", dir)
	}
	vars := map[string]string{}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	paths := strings.NewReplacer(exporterAuthDir, authDir, tlsDir, certDir, "localhost:6379", "localhost:"+strconv.Itoa(redisPort))
	for _, e := range c["env"].([]any) {
		e := e.(map[string]any)
		name := str(e["name"])
		v := str(e["value"])
		if e["valueFrom"] != nil {
			var ok bool
			if v, ok = pod[name]; !ok {
				t.Fatalf("%s: redis-exporter variable %s comes from %v, which this test does not stand in for", dir, name, e["valueFrom"])
			}
		}
		v = ref.ReplaceAllStringFunc(v, func(m string) string {
			if x, ok := vars[ref.FindStringSubmatch(m)[1]]; ok {
				return x
			}
			return m // the kubelet leaves an unknown reference as it is
		})
		vars[name] = v
		env = append(env, name+"="+paths.Replace(v))
	}
	listen = "127.0.0.1:" + strconv.Itoa(freePort(t))
	return append(env, "REDIS_EXPORTER_WEB_LISTEN_ADDRESS="+listen), listen
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startProcess runs name with args (env added to the test's own) until
// the test ends; its output goes to the test log if the test fails.
func startProcess(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// redisServer starts redis-server on a free loopback port with the given
// directives and returns the port once it answers (a TCP connect).
func redisServer(t *testing.T, directives ...string) int {
	t.Helper()
	return server(t, "redis-server", directives...)
}

// server starts program (redis-server or valkey-server) as redisServer
// does.
func server(t *testing.T, program string, directives ...string) int {
	t.Helper()
	bin, err := exec.LookPath(program)
	if err != nil {
		t.Fatalf("%s is not on PATH: the exporter checks scrape a real one; run e2e/hack/install-deps.sh (Debian package %s)", program, program)
	}
	port := freePort(t)
	args := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--port", strconv.Itoa(port)}
	for _, d := range directives {
		args = append(args, strings.Fields(d)...)
	}
	if slices.Contains(args, "--tls-port") {
		args[slices.Index(args, "--port")+1] = "0"
		args[slices.Index(args, "--tls-port")+1] = strconv.Itoa(port)
	}
	startProcess(t, nil, bin, args...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d does not accept connections after 10s: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape GETs the exporter's /metrics and returns its samples by series
// name and labels, e.g. samples["redis_up"] = ["1"].
func scrape(t *testing.T, listen string) (map[string][]string, error) {
	t.Helper()
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET /metrics: %s: %s", resp.Status, b)
	}
	samples := map[string][]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		j := strings.LastIndexByte(line, ' ')
		if i <= 0 || j < i {
			continue
		}
		samples[line[:i]] = append(samples[line[:i]], line[j+1:])
	}
	return samples, sc.Err()
}

// waitRedisUp polls the exporter until it serves redis_up with the value
// want (a scrape connects to redis-server anew), or fails after 15s.
func waitRedisUp(t *testing.T, listen, want string) map[string][]string {
	t.Helper()
	var last string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		s, err := scrape(t, listen)
		switch {
		case err != nil:
			last = err.Error()
		case len(s["redis_up"]) == 1 && s["redis_up"][0] == want:
			return s
		default:
			last = fmt.Sprintf("redis_up %v", s["redis_up"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("redis_exporter on %s: no redis_up %s within 15s (last: %s)", listen, want, last)
	return nil
}

// writePasswordFile writes the exporter's password file as the agent does
// (agent/secrets ExporterPasswordFile, whose unit test pins this content):
// the password for both schemes of localhost:port.
func writePasswordFile(t *testing.T, dir string, port int, pw string) {
	t.Helper()
	m := map[string]string{}
	if pw != "" {
		for _, s := range []string{"redis", "rediss"} {
			m[fmt.Sprintf("%s://localhost:%d", s, port)] = pw
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "passwords.json")); err != nil {
		t.Fatal(err)
	}
}

// exporterOn starts redis_exporter with the environment of the build in
// dir for pod, scraping the redis-server on port with password pw, and
// returns its listen address and the directory of its password file.
func exporterOn(t *testing.T, dir string, pod map[string]string, certDir string, port int, pw string) (listen, authDir string) {
	t.Helper()
	authDir = t.TempDir()
	writePasswordFile(t, authDir, port, pw)
	env, listen := exporterEnv(t, dir, pod, authDir, certDir, port)
	startProcess(t, env, redisExporter(t))
	return listen, authDir
}

// exporterSeries are the series names redis_exporter serves for a master
// with a replica of program (redis-server or valkey-server: the replica's
// master link and offsets, the master's replica count), each scraped by
// its own exporter started with the environment components/redis-exporter
// gives it, with a password.
func exporterSeries(t *testing.T, program string) map[string]bool {
	t.Helper()
	const pw = "exporter-test-password"
	master := server(t, program, "--requirepass "+pw, "--masterauth "+pw)
	replica := server(t, program, "--requirepass "+pw, "--masterauth "+pw, fmt.Sprintf("--replicaof 127.0.0.1 %d", master))
	names := map[string]bool{}
	for i, port := range []int{master, replica} {
		listen, _ := exporterOn(t, "testdata/sentinel", map[string]string{"POD_NAME": fmt.Sprintf("redis-%d", i), "POD_NAMESPACE": "test"}, "", port, pw)
		s := waitRedisUp(t, listen, "1")
		if i == 1 {
			// Until the replica has synced, INFO has no link status.
			deadline := time.Now().Add(15 * time.Second)
			for (len(s["redis_master_link_up"]) == 0 || s["redis_master_link_up"][0] != "1") && time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
				s = waitRedisUp(t, listen, "1")
			}
		}
		for n := range s {
			names[n] = true
		}
	}
	// The check is only as good as this list: redis_exporter's own
	// series of a master and of a linked replica.
	for _, want := range []string{"redis_up", "redis_connected_clients", "redis_connected_slaves", "redis_master_link_up", "redis_master_repl_offset", "redis_commands_processed_total"} {
		if !names[want] {
			t.Fatalf("the exporters serve no %s", want)
		}
	}
	return names
}

// TestRedisExporterPassword: redis_exporter with the environment
// components/redis-exporter gives it reads the password from the file the
// agent writes (never from its environment), reaches the server (redis_up
// 1), and after a password change, the file rewritten and the server's
// password changed, scrapes fail until GET /-/reload (the liveness
// probe's call) re-reads the file.
func TestRedisExporterPassword(t *testing.T) {
	const pw, pw2 = "first-password", "second-password"
	port := redisServer(t, "--requirepass "+pw)
	listen, authDir := exporterOn(t, "testdata/sentinel", map[string]string{"POD_NAME": "redis-0", "POD_NAMESPACE": "test"}, "", port, pw)
	waitRedisUp(t, listen, "1")

	out, err := exec.Command("redis-cli", "-p", strconv.Itoa(port), "--no-auth-warning", "-a", pw, "CONFIG", "SET", "requirepass", pw2).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "OK" {
		t.Fatalf("redis-cli CONFIG SET requirepass: %v %s (redis-cli comes with redis-server: e2e/hack/install-deps.sh)", err, out)
	}
	writePasswordFile(t, authDir, port, pw2)
	waitRedisUp(t, listen, "0")
	resp, err := http.Get("http://" + listen + "/-/reload")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /-/reload (the liveness probe) = %s, want 200", resp.Status)
	}
	waitRedisUp(t, listen, "1")
	t.Logf("redis_up 1 with the password file, 0 after a password change, 1 after GET /-/reload")
}

// TestRedisExporterTLS: with components/redis-exporter-tls the exporter
// reaches a TLS-only redis-server that requires a client certificate
// (redis_up 1), checking the server's certificate against the CA for the
// pod's name; the same certificate checked for another pod's name fails.
func TestRedisExporterTLS(t *testing.T) {
	certDir := t.TempDir()
	ns := "test"
	writeTLSFiles(t, certDir, "*.redis-cluster-headless."+ns+".svc.cluster.local")
	port := redisServer(t, "--tls-port 0", "--tls-cert-file "+certDir+"/tls.crt", "--tls-key-file "+certDir+"/tls.key",
		"--tls-ca-cert-file "+certDir+"/ca.crt", "--tls-auth-clients yes")
	listen, _ := exporterOn(t, "testdata/cluster", map[string]string{"POD_NAME": "redis-cluster-0", "POD_NAMESPACE": ns}, certDir, port, "")
	s := waitRedisUp(t, listen, "1")
	t.Logf("redis_up 1 over TLS (%d series)", len(s))

	// Another namespace: the name the exporter checks is not the
	// certificate's, so the handshake fails.
	other, _ := exporterOn(t, "testdata/cluster", map[string]string{"POD_NAME": "redis-cluster-0", "POD_NAMESPACE": "elsewhere"}, certDir, port, "")
	waitRedisUp(t, other, "0")
}

// writeTLSFiles writes ca.crt, and tls.crt/tls.key for the DNS name, as
// cert-manager would: one certificate for server and client auth.
func writeTLSFiles(t *testing.T, dir, dnsName string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, key := newKey(), newKey()
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "exporter test CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis"}, DNSNames: []string{dnsName}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{"ca.crt": {Type: "CERTIFICATE", Bytes: caDER}, "tls.crt": {Type: "CERTIFICATE", Bytes: der}, "tls.key": {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
