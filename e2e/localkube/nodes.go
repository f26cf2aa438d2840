package localkube

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Ports of the node components. All nodes share the cluster netns (they are
// processes on one machine, like kind's nodes share one kernel), so each
// node's kubelet and containerd streaming server get ports of their own; the
// API server learns a kubelet's port from its Node status.
const (
	kubeletPortBase        = 10250
	kubeletHealthzPortBase = 10270
	streamPortBase         = 10290
	sandboxImage           = "registry.k8s.io/pause:3.10"
	cniPluginsVersion      = "v1.10.0" // e2e/hack/build-k8s.sh builds it
)

// node is one node: a containerd and a kubelet, each a process in the
// cluster netns with the host's mount namespace, and a CNI configuration
// that gives its pods addresses from a range of their own on the shared
// bridge, so pods on different nodes reach each other directly.
type node struct {
	name  string
	index int    // 0-based; picks ports and the pod range 10.244.<index+1>.0/24
	dir   string // <state>/nodes/<name>
	runID string

	mu         sync.Mutex
	containerd *process
	kubelet    *process
	stopped    bool // stop-node: kubelet and containerd are down on purpose
}

func (n *node) sock() string      { return filepath.Join(n.dir, "containerd", "containerd.sock") }
func (n *node) endpoint() string  { return "unix://" + n.sock() }
func (n *node) kubeletPort() int  { return kubeletPortBase + n.index }
func (n *node) healthzPort() int  { return kubeletHealthzPortBase + n.index }
func (n *node) runcRoot() string  { return filepath.Join(n.dir, "runc") }
func (n *node) podLogDir() string { return filepath.Join(n.dir, "pod-logs") }

// cgroupRoot is the node's own subtree in every cgroup hierarchy (the
// kubelet's cgroupRoot): kubepods and each pod's cgroups live below it, so
// nodes never share a QoS cgroup and teardown removes exactly this subtree.
func (n *node) cgroupRoot() string { return "/localkube-" + n.runID + "-" + n.name }

// podRange is the node's host-local IPAM range inside the cluster CIDR.
func (n *node) podRange() (start, end string) {
	return fmt.Sprintf("10.244.%d.2", n.index+1), fmt.Sprintf("10.244.%d.254", n.index+1)
}

// containerdConfig is containerd 1.6's config (version 2) for this node:
// everything under the node's directory, the CRI plugin with the sandbox
// image loaded from our builds, runc with cgroupfs, and CNI from the
// upstream plugins. restrict_oom_score_adj is needed here: processes lack
// CAP_SYS_RESOURCE, so runc cannot lower a sandbox's oom_score_adj and
// sandbox creation fails without it.
func (n *node) containerdConfig(cniBin string) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  stream_server_address = %q
  stream_server_port = "%d"
  restrict_oom_score_adj = true
  enable_selinux = false
  max_container_log_line_size = 16384

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
    max_conf_num = 1
`, filepath.Join(n.dir, "containerd", "root"), filepath.Join(n.dir, "containerd", "state"),
		n.sock(), n.sock()+".ttrpc", filepath.Join(n.dir, "containerd", "opt"),
		sandboxImage, gatewayIP, streamPortBase+n.index, n.runcRoot(),
		cniBin, filepath.Join(n.dir, "cni"))
}

// cniConfig attaches pods to the cluster bridge with an address from the
// node's range; the bridge already carries the gateway address, which every
// pod routes through (to Services via kube-proxy, to the API server).
func (n *node) cniConfig() ([]byte, error) {
	start, end := n.podRange()
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "localkube",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      bridgeName,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": filepath.Join(n.dir, "ipam"),
					"ranges": [][]map[string]string{{{
						"subnet": clusterCIDR, "rangeStart": start, "rangeEnd": end, "gateway": gatewayIP,
					}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// kubeletConfig is the KubeletConfiguration for this node. What differs
// from a default node is what this machine needs (cgroup v1 with the
// cgroupfs driver, swap allowed) and what sharing one netns needs (ports);
// the rest is what kind and kubeadm set.
func (n *node) kubeletConfig(caFile string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %s
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
cgroupRoot: %s
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: %s
clusterDNS: [%s]
clusterDomain: %s
resolvConf: ""
podLogsDir: %s
# Every image is loaded from our builds; never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
# ConfigMap and Secret volumes are refreshed at this period plus the
# watch's propagation, as on any node (default 1m).
syncFrequency: 10s
nodeStatusUpdateFrequency: 5s
serializeImagePulls: false
shutdownGracePeriod: 0s
protectKernelDefaults: false
`, gatewayIP, n.kubeletPort(), n.healthzPort(), caFile, n.cgroupRoot(), n.endpoint(),
		dnsServiceIP, clusterDomain, n.podLogDir())
}

// cgroupHierarchies lists the mounted cgroup v1 hierarchies (and the v2
// unified one when mounted), by directory under /sys/fs/cgroup.
func cgroupHierarchies() []string {
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return out
}

// makeCgroupRoot creates the node's cgroup root in every hierarchy: the
// kubelet refuses a cgroupRoot that does not exist.
func (n *node) makeCgroupRoot() error {
	for _, h := range cgroupHierarchies() {
		if err := os.MkdirAll(filepath.Join(h, n.cgroupRoot()), 0o755); err != nil {
			return fmt.Errorf("node %s: create cgroup %s in %s: %w", n.name, n.cgroupRoot(), h, err)
		}
	}
	return nil
}

// removeCgroups removes the cgroup trees of every node of a run once their
// processes are gone, deepest first (cgroup directories go with rmdir).
func removeCgroups(runID string) error {
	var errs []error
	for _, h := range cgroupHierarchies() {
		entries, _ := os.ReadDir(h)
		for _, e := range entries {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), "localkube-"+runID+"-") {
				continue
			}
			if strings.HasSuffix(h, "/freezer") {
				thawAll(e.Name())
			}
			if err := rmdirTree(filepath.Join(h, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func rmdirTree(dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	// A cgroup still emptying (a process exiting) refuses rmdir for a
	// moment; retry, but within one deadline for the whole tree so a
	// process that will not die cannot stall teardown.
	deadline := time.Now().Add(10 * time.Second)
	for i := len(dirs) - 1; i >= 0; i-- {
		for {
			err := os.Remove(dirs[i])
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w (a process is still in it)", dirs[i], err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// thawAll thaws every frozen cgroup of the node: a process in a frozen
// cgroup does not die from SIGKILL until it is thawed, so teardown thaws
// first (the kubelet cannot kill a frozen pod either).
func thawAll(cgroupRoot string) {
	_ = filepath.WalkDir(filepath.Join("/sys/fs/cgroup/freezer", cgroupRoot), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "freezer.state" {
			if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) != "THAWED" {
				_ = os.WriteFile(p, []byte("THAWED"), 0o644)
			}
		}
		return nil
	})
}

// nodeLabelsFlag renders Options.NodeLabels for --node-labels.
func nodeLabelsFlag(labels map[string]string) string {
	var parts []string
	for k, v := range labels {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

// writeFiles writes the node's configuration files.
func (n *node) writeFiles(cniBin, caFile string) error {
	for _, d := range []string{"containerd", "cni", "ipam", "pod-logs", "kubelet", "pki", "runc"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o755); err != nil {
			return fmt.Errorf("node %s: %w", n.name, err)
		}
	}
	cni, err := n.cniConfig()
	if err != nil {
		return err
	}
	files := map[string][]byte{
		filepath.Join(n.dir, "containerd", "config.toml"):    []byte(n.containerdConfig(cniBin)),
		filepath.Join(n.dir, "cni", "10-localkube.conflist"): cni,
		filepath.Join(n.dir, "kubelet-config.yaml"):          []byte(n.kubeletConfig(caFile)),
	}
	for p, b := range files {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("node %s: write %s: %w", n.name, p, err)
		}
	}
	return nil
}
