package localkube

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
)

// Options configure Up. The zero value works from anywhere inside the
// repository checkout.
type Options struct {
	// StateDir holds the PKI, etcd data, kubeconfigs, logs, the nodes'
	// directories and the volumes. Default /tmp/localkube. One live run
	// per dir.
	StateDir string
	// BinDir holds kube-apiserver, kube-controller-manager, kube-scheduler,
	// kube-proxy, coredns, kubelet, crictl and the CNI plugins. Empty:
	// e2e/hack/build-k8s.sh builds what is missing into the version-keyed
	// cache and says where.
	BinDir string
	// CacheDir is passed to build-k8s.sh. Empty: its default.
	CacheDir string
	// RepoRoot is the redis-ha-agent checkout the agent image is built
	// from. Empty: found by walking up from the working directory.
	RepoRoot string
	// EtcdBinary defaults to etcd on PATH (Debian's etcd-server).
	EtcdBinary string
	// Nodes are the nodes, a kubelet and a containerd each. Default
	// node-a, node-b, node-c.
	Nodes []string
	// NodeLabels adds labels per node. Nil: each default node in its own
	// zone (topology.kubernetes.io/zone zone-a, zone-b, zone-c), which the
	// API server copies onto the pods it schedules there
	// (PodTopologyLabelsAdmission, turned on here).
	NodeLabels map[string]map[string]string
	// Log receives progress and component errors. Zero value: discarded.
	Log zerolog.Logger
	// ImageCacheDir is where e2e/images keeps built images. Empty: its
	// default (under the same cache root as the Kubernetes binaries).
	ImageCacheDir string
	// OnPhase, if set, is called as each phase of Up completes.
	OnPhase func(Phase)
}

// rootModule identifies the repository root's go.mod.
const rootModule = "module github.com/redis-ha-agent/redis-ha-agent"

func (o *Options) setDefaults() error {
	if o.StateDir == "" {
		o.StateDir = "/tmp/localkube"
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return fmt.Errorf("state dir %q: %w", o.StateDir, err)
	}
	o.StateDir = abs
	if o.EtcdBinary == "" {
		p, err := exec.LookPath("etcd")
		if err != nil {
			return errors.New("etcd not found on PATH: install Debian's etcd-server (e2e/hack/install-deps.sh) or set Options.EtcdBinary")
		}
		o.EtcdBinary = p
	}
	if len(o.Nodes) == 0 {
		o.Nodes = []string{"node-a", "node-b", "node-c"}
		if o.NodeLabels == nil {
			o.NodeLabels = map[string]map[string]string{}
			for _, n := range o.Nodes {
				o.NodeLabels[n] = map[string]string{"topology.kubernetes.io/zone": "zone-" + strings.TrimPrefix(n, "node-")}
			}
		}
	}
	if o.RepoRoot == "" {
		root, err := findRepoRoot()
		if err != nil {
			return err
		}
		o.RepoRoot = root
	}
	return nil
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if strings.TrimSpace(first) == rootModule {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no redis-ha-agent checkout (go.mod with %q) above %s: run from inside the repository or set Options.RepoRoot", rootModule, dir)
		}
	}
}

// buildK8s runs e2e/hack/build-k8s.sh, which builds only what is missing,
// and returns the bin directory it prints last.
func buildK8s(ctx context.Context, o Options) (string, error) {
	script := filepath.Join(o.RepoRoot, "e2e", "hack", "build-k8s.sh")
	args := []string{}
	if o.CacheDir != "" {
		args = append(args, o.CacheDir)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, script, args...)
	cmd.Stdout = &out
	cmd.Stderr = o.Log.With().Str("component", "build-k8s").Logger()
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s failed: %w (see the build output above)", script, err)
	}
	var last string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	if last == "" {
		return "", fmt.Errorf("%s printed no bin directory", script)
	}
	return last, nil
}
