package localkube

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// poll runs cond every interval until it returns true, an error, the
// component dies, or timeout passes; the error says what was awaited.
func (c *Cluster) poll(ctx context.Context, what, component string, timeout time.Duration, cond func(ctx context.Context) (bool, error)) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if component != "" {
			if err := c.componentDied(component); err != nil {
				return false, err
			}
		}
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		if component != "" {
			if derr := c.componentDied(component); derr != nil {
				return fmt.Errorf("waiting for %s: %w", what, derr)
			}
		}
		return fmt.Errorf("waiting for %s: %w (last error: %v; logs in %s/logs)", what, err, last, c.stateDir)
	}
	return nil
}

// clusterHTTP is an HTTP client whose connections start in the cluster netns,
// for the components' plain-HTTP health endpoints on 127.0.0.1 there.
func (c *Cluster) clusterHTTP() *http.Client {
	return &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{DialContext: c.Network.cluster.dial, DisableKeepAlives: true},
	}
}

func httpOK(ctx context.Context, hc *http.Client, url, want string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
		return false, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return true, nil
}

func (c *Cluster) waitEtcd(ctx context.Context) error {
	hc := c.clusterHTTP()
	return c.poll(ctx, "etcd /health", compEtcd, time.Minute, func(ctx context.Context) (bool, error) {
		return httpOK(ctx, hc, etcdClientURL+"/health", `"health":"true"`)
	})
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) with the
// same certificates and etcd data and waits until /readyz passes.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if c.External() {
		return fmt.Errorf("start the API server: %w", ErrNeedsLocalNodes)
	}
	c.mu.Lock()
	_, running := c.procs[compAPIServer]
	c.mu.Unlock()
	if running {
		if err := c.componentDied(compAPIServer); err == nil {
			return nil
		}
		_ = c.stopComponent(compAPIServer, 0)
	}
	if err := c.startComponent(compAPIServer); err != nil {
		return err
	}
	rc := c.Clientset.Discovery().RESTClient()
	return c.poll(ctx, "kube-apiserver /readyz", compAPIServer, 2*time.Minute, func(ctx context.Context) (bool, error) {
		// client-go retries refused connections for ~10s inside one call;
		// a short deadline keeps the check (and death detection) snappy.
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		b, err := rc.Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return false, fmt.Errorf("%w: %s", err, b)
		}
		return string(b) == "ok", nil
	})
}

// StopAPIServer stops kube-apiserver (SIGTERM; SIGKILL after 5s, because
// with watches open through the forwarder v1.34 lingers for half a minute
// after it stopped listening); etcd and everything else keep running.
func (c *Cluster) StopAPIServer(ctx context.Context) error {
	if c.External() {
		return fmt.Errorf("stop the API server: %w", ErrNeedsLocalNodes)
	}
	return c.stopComponent(compAPIServer, 5*time.Second)
}

// waitDNS resolves the kubernetes Service through the kube-dns ClusterIP
// from the cluster netns, which needs CoreDNS synced with the API and
// kube-proxy's rules for kube-dns in place: one check for both.
func (c *Cluster) waitDNS(ctx context.Context) error {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return c.Network.cluster.dial(ctx, network, net.JoinHostPort(dnsServiceIP, "53"))
	}}
	want := "kubernetes.default.svc." + clusterDomain + "."
	return c.poll(ctx, want+" via "+dnsServiceIP+" (CoreDNS behind kube-proxy)", "", time.Minute, func(ctx context.Context) (bool, error) {
		for _, comp := range []string{compCoreDNS, compKubeProxy} {
			if err := c.componentDied(comp); err != nil {
				return false, err
			}
		}
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		addrs, err := r.LookupHost(ctx, want)
		if err != nil {
			return false, err
		}
		return len(addrs) == 1 && addrs[0] == kubernetesSvc, fmt.Errorf("%s resolved to %v, want %s", want, addrs, kubernetesSvc)
	})
}

// waitNodesReady waits for every configured node to report Ready.
func (c *Cluster) waitNodesReady(ctx context.Context) error {
	return c.poll(ctx, fmt.Sprintf("nodes %v Ready", c.opts.Nodes), "", 2*time.Minute, func(ctx context.Context) (bool, error) {
		// A pod in the default namespace is refused until the serviceaccount
		// controller made its "default" ServiceAccount; a cluster is ready
		// for `apply` only once that exists.
		if _, err := c.Clientset.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			return false, fmt.Errorf("ServiceAccount default/default: %w", err)
		}
		for _, name := range c.opts.Nodes {
			n, err := c.Clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if !nodeReady(n) {
				return false, fmt.Errorf("node %s not Ready", name)
			}
		}
		return true, nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}
