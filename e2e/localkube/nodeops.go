package localkube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// startNodes starts, for every node, containerd, loads the images into
// it, then starts the kubelet. Nodes start in parallel.
func (c *Cluster) startNodes(ctx context.Context) error {
	cniBin := filepath.Join(c.binDir, "cni-"+cniPluginsVersion)
	for _, b := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if _, err := os.Stat(filepath.Join(cniBin, b)); err != nil {
			return fmt.Errorf("CNI plugin %s missing in %s: run e2e/hack/build-k8s.sh", b, cniBin)
		}
	}
	for _, tool := range []string{"containerd", "ctr", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found on PATH: install Debian's containerd and runc (bash e2e/hack/install-deps.sh)", tool)
		}
	}
	caFile := filepath.Join(c.stateDir, "pki", "ca.crt")
	g, gctx := errgroup.WithContext(ctx)
	for i, name := range c.opts.Nodes {
		n := &node{name: name, index: i, dir: nodeDir(c.stateDir, name), runID: c.RunID}
		c.nodes = append(c.nodes, n)
		g.Go(func() error {
			if err := n.writeFiles(cniBin, caFile); err != nil {
				return err
			}
			if err := n.makeCgroupRoot(); err != nil {
				return err
			}
			if err := c.startContainerd(gctx, n); err != nil {
				return err
			}
			if err := c.loadImages(gctx, n); err != nil {
				return err
			}
			return c.startKubelet(n)
		})
	}
	return g.Wait()
}

func (c *Cluster) startContainerd(ctx context.Context, n *node) error {
	p, err := c.spawn.startNetOnly(n.name+"-containerd", c.Network.cluster, filepath.Join(c.stateDir, "logs", n.name+"-containerd.log"),
		"containerd", "--config", filepath.Join(n.dir, "containerd", "config.toml"))
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.containerd = p
	n.mu.Unlock()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := c.ctr(ctx, n, "version"); err == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("node %s: containerd exited (%v); see %s", n.name, p.exitError(), filepath.Join(c.stateDir, "logs", n.name+"-containerd.log"))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: containerd did not answer on %s within a minute; see its log", n.name, n.sock())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) startKubelet(n *node) error {
	args := []string{
		"--config=" + filepath.Join(n.dir, "kubelet-config.yaml"),
		"--kubeconfig=" + componentKubeconfig(c.stateDir, "node-"+n.name),
		"--hostname-override=" + n.name,
		"--node-ip=" + gatewayIP,
		"--root-dir=" + filepath.Join(n.dir, "kubelet"),
		"--cert-dir=" + filepath.Join(n.dir, "pki"),
		"--v=1",
	}
	if l := c.opts.NodeLabels[n.name]; len(l) > 0 {
		args = append(args, "--node-labels="+nodeLabelsFlag(l))
	}
	p, err := c.spawn.startNetOnly(n.name+"-kubelet", c.Network.cluster, filepath.Join(c.stateDir, "logs", n.name+"-kubelet.log"),
		filepath.Join(c.binDir, "kubelet"), args...)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.kubelet = p
	n.mu.Unlock()
	return nil
}

// loadImages imports every image tarball into the node's containerd under
// its name (the k8s.io namespace is the CRI plugin's), then tags the
// aliases, so pods run without a pull.
func (c *Cluster) loadImages(ctx context.Context, n *node) error {
	for _, img := range c.images {
		if _, err := c.ctr(ctx, n, "-n", "k8s.io", "images", "import", img.Tar); err != nil {
			return fmt.Errorf("node %s: import image %s from %s: %w", n.name, img.Ref, img.Tar, err)
		}
	}
	for alias, target := range c.imageAliases {
		if _, err := c.ctr(ctx, n, "-n", "k8s.io", "images", "tag", "--force", target, alias); err != nil {
			return fmt.Errorf("node %s: tag %s as %s: %w", n.name, target, alias, err)
		}
	}
	return nil
}

// ctr runs containerd's own client against a node's containerd.
func (c *Cluster) ctr(ctx context.Context, n *node, args ...string) (string, error) {
	return output(ctx, "ctr", append([]string{"--address", n.sock()}, args...)...)
}

// crictl runs the CRI client (the tool node operators use) against a node.
func (c *Cluster) crictl(ctx context.Context, n *node, args ...string) (string, error) {
	return output(ctx, filepath.Join(c.binDir, "crictl"), append([]string{"--runtime-endpoint", n.endpoint(), "--timeout", "20s"}, args...)...)
}

// stopNodes stops every kubelet, removes every pod sandbox through the
// CRI (so CNI releases addresses and deletes the pods' network namespaces),
// stops containerd, then removes what a dead shim could leave: runc
// containers, mounts and the nodes' cgroups.
func (c *Cluster) stopNodes(ctx context.Context) error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.stopNode(ctx, n, true); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if c.RunID != "" {
		if err := removeCgroups(c.RunID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopNode stops the node's kubelet and containerd. With removePods it
// first removes every pod sandbox (teardown); without, the containers keep
// running as on a node whose kubelet died (stop-node).
func (c *Cluster) stopNode(ctx context.Context, n *node, removePods bool) error {
	var errs []error
	n.mu.Lock()
	kl, cd := n.kubelet, n.containerd
	n.mu.Unlock()
	if kl != nil {
		if err := kl.stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if removePods {
		thawAll(n.cgroupRoot())
	}
	var rmpErr error
	if removePods && cd != nil && !cd.exited() {
		if _, err := c.crictl(ctx, n, "rmp", "--all", "--force"); err != nil {
			rmpErr = fmt.Errorf("node %s: remove pods: %w", n.name, err)
		}
	}
	if cd != nil {
		if err := cd.stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if removePods {
		thawAll(n.cgroupRoot())
		// What the CRI could not stop (seen once: a container whose kill
		// failed after a freeze), runc kills and deletes here; only when
		// that fails too is the CRI's error the teardown's.
		if err := killRuncContainers(ctx, n.runcRoot()); err != nil {
			errs = append(errs, err, rmpErr)
		} else if rmpErr != nil {
			c.log.Warn().Err(rmpErr).Str("node", n.name).Msg("the CRI did not remove every pod; runc killed and deleted what was left")
		}
		killShims(n.dir)
		if err := unmountUnder(n.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killRuncContainers SIGKILLs and deletes every container runc knows under
// root (every namespace directory below it): what is left when containerd
// died before it could stop its shims.
func killRuncContainers(ctx context.Context, root string) error {
	dirs, _ := os.ReadDir(root)
	var errs []error
	for _, d := range dirs {
		r := filepath.Join(root, d.Name())
		out, err := output(ctx, "runc", "--root", r, "list", "--format", "json")
		if err != nil {
			continue
		}
		var list []struct {
			ID string `json:"id"`
		}
		if json.Unmarshal([]byte(out), &list) != nil {
			continue
		}
		for _, ct := range list {
			_, _ = output(ctx, "runc", "--root", r, "kill", ct.ID, "KILL")
			if _, err := output(ctx, "runc", "--root", r, "delete", "--force", ct.ID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// StopNode stops one node's kubelet and containerd, as when a node's
// agents die: its containers keep running (their shims outlive
// containerd), the Node turns NotReady, and the node lifecycle controller
// taints it and evicts pods per their tolerations. StartNode undoes it.
func (c *Cluster) StopNode(ctx context.Context, name string) error {
	if c.External() {
		return fmt.Errorf("stop node %s: %w", name, ErrNeedsLocalNodes)
	}
	n, err := c.nodeNamed(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	return c.stopNode(ctx, n, false)
}

// StartNode starts a stopped node's containerd and kubelet again.
func (c *Cluster) StartNode(ctx context.Context, name string) error {
	if c.External() {
		return fmt.Errorf("start node %s: %w", name, ErrNeedsLocalNodes)
	}
	n, err := c.nodeNamed(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	stopped := n.stopped
	n.stopped = false
	n.mu.Unlock()
	if !stopped {
		return nil
	}
	if err := c.startContainerd(ctx, n); err != nil {
		return err
	}
	return c.startKubelet(n)
}

// killShims SIGKILLs the containerd shims that serve a node under dir: a
// shim whose containerd is gone never learns that its container was
// deleted and would wait forever.
func killShims(dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("containerd-shim")) || !bytes.Contains(b, []byte(dir+"/")) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
