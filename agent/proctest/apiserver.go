package proctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// buildScript builds the control-plane binaries; its defaults are the
// versions the tests look for.
const buildScript = "e2e/hack/build-k8s.sh"

// K8sBinDir is where e2e/hack/build-k8s.sh puts the control-plane binaries,
// worked out the way the script does: $REDIS_HA_E2E_CACHE, else
// $XDG_CACHE_HOME/redis-ha-agent-e2e, else ~/.cache/redis-ha-agent-e2e;
// then k8s-$K8S_VERSION-coredns-$COREDNS_VERSION/bin, with the script's own
// default versions.
func K8sBinDir() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	script, err := os.ReadFile(filepath.Join(root, buildScript))
	if err != nil {
		return "", fmt.Errorf("read %s for the Kubernetes version the tests use: %w", buildScript, err)
	}
	version := func(name string) (string, error) {
		if v := os.Getenv(name); v != "" {
			return v, nil
		}
		m := regexp.MustCompile(name + `=\$\{` + name + `:-([^}]+)\}`).FindSubmatch(script)
		if m == nil {
			return "", fmt.Errorf("%s sets no default %s", buildScript, name)
		}
		return string(m[1]), nil
	}
	k8s, err := version("K8S_VERSION")
	if err != nil {
		return "", err
	}
	coredns, err := version("COREDNS_VERSION")
	if err != nil {
		return "", err
	}
	cache := os.Getenv("REDIS_HA_E2E_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("no REDIS_HA_E2E_CACHE, XDG_CACHE_HOME or home directory: %w", err)
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "redis-ha-agent-e2e")
	}
	return filepath.Join(cache, "k8s-"+k8s+"-coredns-"+coredns, "bin"), nil
}

// repoRoot is the nearest directory above the working directory (a
// package's, under go test) that has both go.mod and e2e/.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, buildScript)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no directory above the working directory holds " + buildScript)
		}
		dir = parent
	}
}

// etcdDataDir is a directory for the test etcd's data on /dev/shm when it
// is there (a tmpfs), else under dir. etcd 3.4 has no --unsafe-no-fsync,
// and on a disk its fsyncs wait behind whatever else the machine writes (a
// parallel go build): a clean-clone CI check saw API server writes time out
// after 5 s. The data lives only as long as the test.
func etcdDataDir(t testing.TB, dir string) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "agenttest-etcd-"); err == nil {
			// Registered before Start's stop, so it runs after etcd exits.
			t.Cleanup(func() { _ = os.RemoveAll(d) })
			return d
		}
	}
	return filepath.Join(dir, "etcd")
}

// StartAPIServer runs etcd and kube-apiserver on 127.0.B.1 (the first free
// B from 39 down to 30, so concurrent runs do not collide) for one test and
// returns an admin client config. A kube-apiserver that is not built fails
// the test with the path looked at and how to build it.
func StartAPIServer(t testing.TB) (*rest.Config, *Proc) {
	t.Helper()
	bin, err := K8sBinDir()
	if err != nil {
		t.Fatalf("locate kube-apiserver: %v", err)
	}
	apiserver := filepath.Join(bin, "kube-apiserver")
	if _, err := os.Stat(apiserver); err != nil {
		t.Fatalf("kube-apiserver is not at %s (%v): build it with `bash %s` (make k8s; about 15 minutes the first time), with the same REDIS_HA_E2E_CACHE, XDG_CACHE_HOME and K8S_VERSION as this test", apiserver, err, buildScript)
	}
	NeedPrograms(t, "etcd")
	dir := t.TempDir()
	ip := freeAPIAddress(t)
	etcdURL := "http://" + ip + ":2379"
	Start(t, filepath.Join(dir, "etcd.log"), "etcd",
		"--name=agenttest", "--data-dir="+etcdDataDir(t, dir),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls=http://"+ip+":2380", "--initial-advertise-peer-urls=http://"+ip+":2380",
		"--initial-cluster=agenttest=http://"+ip+":2380", "--log-level=warn")
	const token = "agent-test-admin-token"
	saKey, saPub, tokens := apiServerFiles(t, dir, token)
	api := Start(t, filepath.Join(dir, "apiserver.log"), apiserver,
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
	err = Until(ctx, 90*time.Second, func() error {
		select {
		case <-api.Done():
			return errors.New("kube-apiserver exited")
		default:
		}
		body, err := kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil || string(body) != "ok" {
			return fmt.Errorf("/readyz: %v %s", err, body)
		}
		// The default namespace is created by the apiserver's own controller.
		_, err = kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("kube-apiserver not ready with namespace default: %v\n%s", err, api.Tail())
	}
	return cfg, api
}

func freeAPIAddress(t testing.TB) string {
	t.Helper()
	for b := 39; b >= 30; b-- {
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
			return cand
		}
	}
	t.Fatal("no free 127.0.30-39.1 address for etcd and kube-apiserver")
	return ""
}

// apiServerFiles writes the service-account key pair and a token file that
// makes token an admin.
func apiServerFiles(t testing.TB, dir, token string) (saKey, saPub, tokens string) {
	t.Helper()
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
	saKey = write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	saPub = write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	tokens = write("tokens.csv", []byte(token+",admin,admin,system:masters\n"))
	return saKey, saPub, tokens
}
