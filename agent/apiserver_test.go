package agent

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// k8sBinDir is where e2e/hack/build-k8s.sh puts the control-plane binaries.
func k8sBinDir() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "redis-ha-agent-e2e", "k8s-v1.34.4-coredns-v1.12.4", "bin")
}

// testProc is a process a test started; stopped by PID in Cleanup.
type testProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(t *testing.T, logPath, bin string, args ...string) *testProc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &testProc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() { p.stop(syscall.SIGTERM, 10*time.Second) })
	return p
}

// stop signals the process and waits for it, escalating to SIGKILL.
func (p *testProc) stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// signal sends sig (SIGSTOP/SIGCONT to freeze a process as a partition would).
func (p *testProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.cmd.Path, err)
	}
}

func (p *testProc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// startAPIServer runs etcd and kube-apiserver on 127.0.B.1 (the first free B
// from 39 down to 30, so concurrent runs do not collide) for one test and
// returns an admin client config. Tests that touch the Kubernetes API need a
// real API server; they skip only when the binaries are genuinely missing
// (the e2e step of `make test` builds them; e2e/sentinel covers the same).
func startAPIServer(t *testing.T) (*rest.Config, *testProc) {
	t.Helper()
	apiserver := filepath.Join(k8sBinDir(), "kube-apiserver")
	if _, err := os.Stat(apiserver); err != nil {
		t.Skipf("kube-apiserver not built at %s (run e2e/hack/build-k8s.sh); e2e/sentinel covers this path: %v", apiserver, err)
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		t.Skipf("etcd not installed: %v", err)
	}
	dir := t.TempDir()
	ip := ""
	for b := 39; b >= 30 && ip == ""; b-- {
		cand := fmt.Sprintf("127.0.%d.1", b)
		free := true
		for _, port := range []string{"2379", "2380", "6443"} {
			ln, err := net.Listen("tcp", net.JoinHostPort(cand, port))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			ip = cand
		}
	}
	if ip == "" {
		t.Fatal("no free 127.0.30-39.1 address for etcd and kube-apiserver")
	}
	etcdURL := "http://" + ip + ":2379"
	startProc(t, filepath.Join(dir, "etcd.log"), etcd,
		"--name=agenttest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://"+ip+":2380", "--initial-advertise-peer-urls=http://"+ip+":2380",
		"--initial-cluster=agenttest=http://"+ip+":2380", "--log-level=warn")

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	saKey := write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	saPub := write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	const token = "agent-test-admin-token"
	tokens := write("tokens.csv", []byte(token+",admin,admin,system:masters\n"))
	api := startProc(t, filepath.Join(dir, "apiserver.log"), apiserver,
		"--etcd-servers="+etcdURL, "--bind-address="+ip, "--advertise-address="+ip, "--secure-port=6443",
		"--cert-dir="+filepath.Join(dir, "certs"), "--token-auth-file="+tokens,
		"--service-account-issuer=https://kubernetes.default.svc", "--api-audiences=https://kubernetes.default.svc",
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/24",
		"--disable-admission-plugins=ServiceAccount", "--enable-priority-and-fairness=false", "--profiling=false")

	cfg := &rest.Config{Host: "https://" + ip + ":6443", BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 50, Burst: 100, Timeout: 5 * time.Second}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		body, err := kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kube-apiserver not ready within 90s (last: %v %s)\n%s", err, body, api.tail())
		case <-api.done:
			t.Fatalf("kube-apiserver exited:\n%s", api.tail())
		case <-time.After(300 * time.Millisecond):
		}
	}
	// The default namespace is created by the apiserver's own controller.
	for {
		if _, err := kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
			return cfg, api
		}
		select {
		case <-ctx.Done():
			t.Fatalf("namespace default never appeared within 90s: %v", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
