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
	// StateDir holds the PKI, etcd data, kubeconfigs, logs and the node
	// agent's directories. Default /tmp/localkube. One live run per dir.
	StateDir string
	// BinDir holds kube-apiserver, kube-controller-manager, kube-scheduler,
	// kube-proxy and coredns. Empty: e2e/hack/build-k8s.sh builds what is
	// missing into the version-keyed cache and says where.
	BinDir string
	// CacheDir is passed to build-k8s.sh. Empty: its default.
	CacheDir string
	// RepoRoot is the redis-ha-agent checkout. Empty: found by walking up
	// from the working directory.
	RepoRoot string
	// EtcdBinary defaults to etcd on PATH (Debian's etcd-server).
	EtcdBinary string
	// AgentBinary is the redis-ha-agent binary pods run. Empty: built from
	// RepoRoot into StateDir/bin.
	AgentBinary string
	// Nodes are the Node objects the node agent registers. Default
	// node-a, node-b, node-c.
	Nodes []string
	// NodeLabels adds labels per node (e.g. topology.kubernetes.io/zone).
	NodeLabels map[string]map[string]string
	// Log receives progress and component errors. Zero value: discarded.
	Log zerolog.Logger
	// NodeRuntime is RuntimeKubelet (the upstream kubelet on containerd,
	// running the images built by e2e/images) or RuntimeAgent (the
	// process-based node agent). Empty: $LOCALKUBE_NODE_RUNTIME, else
	// RuntimeAgent.
	NodeRuntime string
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
	if o.NodeRuntime == "" {
		o.NodeRuntime = os.Getenv("LOCALKUBE_NODE_RUNTIME")
	}
	switch o.NodeRuntime {
	case "":
		o.NodeRuntime = RuntimeAgent
	case RuntimeAgent, RuntimeKubelet:
	default:
		return fmt.Errorf("node runtime %q (Options.NodeRuntime or $LOCALKUBE_NODE_RUNTIME): want %q or %q", o.NodeRuntime, RuntimeKubelet, RuntimeAgent)
	}
	if len(o.Nodes) == 0 {
		o.Nodes = []string{"node-a", "node-b", "node-c"}
	}
	if o.RepoRoot == "" && (o.BinDir == "" || o.AgentBinary == "") {
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

// buildAgent builds the redis-ha-agent binary the node agent maps the
// agent's image to. Go's build cache makes this a link step when warm.
func buildAgent(ctx context.Context, o Options, out string) error {
	// The same flags as `make build` and the Dockerfile, so footprint
	// figures measured on the local cluster are the shipped binary's.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/redis-ha-agent")
	cmd.Dir = o.RepoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var b bytes.Buffer
	cmd.Stdout = &b
	cmd.Stderr = &b
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/redis-ha-agent in %s: %w: %s", o.RepoRoot, err, strings.TrimSpace(b.String()))
	}
	return nil
}
