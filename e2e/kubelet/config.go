package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/client-go/kubernetes"
)

// PodNetwork gives each pod a network namespace on the cluster network. The
// localkube package implements it.
type PodNetwork interface {
	// SetupPod creates the pod's network namespace attached to the cluster network and returns it.
	SetupPod(ctx context.Context, podUID, podName string) (PodNet, error)
	TeardownPod(podUID string) error
}

// PodNet is one pod's place on the cluster network.
type PodNet struct {
	NetNSPath string
	IP        string
	DNSServer string
	Gateway   string
}

// Config configures the node agent.
type Config struct {
	Client kubernetes.Interface // admin client
	// Nodes are the Node names registered and served, e.g. node-a, node-b.
	Nodes []string
	// NodeLabels adds labels per node (e.g. topology.kubernetes.io/zone).
	NodeLabels map[string]map[string]string
	Network    PodNetwork
	// RootDir holds pods' dirs (<RootDir>/pods/<ns>_<pod>_<uid>, with the
	// container logs) and PVC dirs (<RootDir>/pvc/<ns>/<claim>, which
	// survive pod deletion).
	RootDir string
	// Binaries maps command basenames (BinAgent, BinServer, BinSentinel,
	// BinCLI, ...) to host paths. Unset redis-* entries default to the
	// binaries found in PATH; BinAgent has no default.
	Binaries      map[string]string
	ClusterDomain string // default cluster.local
	CACertPEM     []byte // ca.crt of projected service-account volumes
	// HostIP is every node's InternalIP and every pod's status.hostIP
	// (default 10.244.0.1, the cluster bridge).
	HostIP string
	// KubernetesService is the kubernetes Service's ClusterIP and port for
	// KUBERNETES_SERVICE_HOST/PORT (default 10.96.0.1:443).
	KubernetesService string
	// Dialer, if set, dials pod IPs from the cluster network (used by
	// httpGet and tcpSocket probes and hooks); otherwise the kubelet dials
	// from inside the pod's network namespace.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxBackoff caps the crash-loop restart backoff (default 10s; the real
	// kubelet uses 5 minutes).
	MaxBackoff time.Duration
	// ShutdownGrace is how long Run's shutdown waits after SIGTERM before
	// SIGKILL (default 2s).
	ShutdownGrace time.Duration
	Log           zerolog.Logger
}

// tools are the util-linux binaries that build a container.
type tools struct{ nsenter, unshare, setpriv string }

func (c *Config) setDefaults() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("kubelet: Config.Client is nil: pass an admin clientset"))
	}
	if len(c.Nodes) == 0 {
		errs = append(errs, errors.New("kubelet: Config.Nodes is empty: name at least one node"))
	}
	if c.Network == nil {
		errs = append(errs, errors.New("kubelet: Config.Network is nil: pass the cluster's PodNetwork"))
	}
	if c.RootDir == "" || !filepath.IsAbs(c.RootDir) {
		errs = append(errs, fmt.Errorf("kubelet: Config.RootDir %q must be an absolute directory path", c.RootDir))
	}
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	if c.HostIP == "" {
		c.HostIP = "10.244.0.1"
	}
	if c.KubernetesService == "" {
		c.KubernetesService = "10.96.0.1:443"
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 2 * time.Second
	}
	bins := map[string]string{}
	for k, v := range c.Binaries {
		bins[k] = v
	}
	for _, b := range redisCommands() {
		if bins[b] == "" {
			if p, err := exec.LookPath(b); err == nil {
				bins[b] = p
			}
		}
	}
	c.Binaries = bins
	return errors.Join(errs...)
}

func findTools() (tools, error) {
	var t tools
	var errs []error
	for _, x := range []struct {
		name string
		dst  *string
	}{{"nsenter", &t.nsenter}, {"unshare", &t.unshare}, {"setpriv", &t.setpriv}} {
		p, err := exec.LookPath(x.name)
		if err != nil {
			errs = append(errs, fmt.Errorf("kubelet: %s not found in PATH (%s): install util-linux", x.name, os.Getenv("PATH")))
		}
		*x.dst = p
	}
	return t, errors.Join(errs...)
}
