package kubelet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// KillContainer SIGKILLs a container's process group; the container then
// restarts per the pod's restartPolicy, as after a crash on a real node.
func (k *Kubelet) KillContainer(ns, pod, container string) error {
	w, c, err := k.container(ns, pod, container)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.proc == nil || c.proc.exited() {
		return fmt.Errorf("container %s of pod %s/%s is not running", container, ns, pod)
	}
	return c.proc.signalGroup(syscall.SIGKILL)
}

// KillPod SIGKILLs every process of the pod with no preStop hook. Like a
// crash of every container on a real node, the pod keeps its sandbox (same
// IP) and its containers restart per restartPolicy with restart counts
// incremented; init containers that completed do not run again.
func (k *Kubelet) KillPod(ns, pod string) error {
	w, err := k.worker(ns, pod)
	if err != nil {
		return err
	}
	return w.signalAll(syscall.SIGKILL)
}

// Freeze SIGSTOPs every process of the pod (a hung pod: probes time out,
// peers see no answers). Thaw resumes them.
func (k *Kubelet) Freeze(ns, pod string) error {
	w, err := k.worker(ns, pod)
	if err != nil {
		return err
	}
	return w.signalAll(syscall.SIGSTOP)
}

// Thaw SIGCONTs every process of the pod.
func (k *Kubelet) Thaw(ns, pod string) error {
	w, err := k.worker(ns, pod)
	if err != nil {
		return err
	}
	return w.signalAll(syscall.SIGCONT)
}

// PID returns the host PID of a container's main process.
func (k *Kubelet) PID(ns, pod, container string) (int, error) {
	w, c, err := k.container(ns, pod, container)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.proc == nil || c.proc.exited() {
		return 0, fmt.Errorf("container %s of pod %s/%s is not running", container, ns, pod)
	}
	return c.proc.pid, nil
}

// PodNetNS returns the path of the pod's network namespace.
func (k *Kubelet) PodNetNS(ns, pod string) (string, error) {
	w, err := k.worker(ns, pod)
	if err != nil {
		return "", err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range append(append([]*ctr{}, w.init...), w.main...) {
		if c.proc != nil && !c.proc.exited() {
			return fmt.Sprintf("/proc/%d/ns/net", c.proc.pid), nil
		}
	}
	return "", fmt.Errorf("pod %s/%s has no running container (no network namespace to show)", ns, pod)
}

// LogPath returns the file holding a container's output (all runs).
func (k *Kubelet) LogPath(ns, pod, container string) (string, error) {
	w, c, err := k.container(ns, pod, container)
	if err != nil {
		return "", err
	}
	return w.logPath(&c.spec), nil
}

// Exec runs cmd inside a running container: its network, mount and UTS
// namespaces, working directory, credentials and environment.
func (k *Kubelet) Exec(ctx context.Context, ns, pod, container string, cmd []string, stdout, stderr io.Writer) error {
	w, c, err := k.container(ns, pod, container)
	if err != nil {
		return err
	}
	return w.execIn(ctx, c, cmd, stdout, stderr)
}

func (k *Kubelet) container(ns, pod, container string) (*podWorker, *ctr, error) {
	w, err := k.worker(ns, pod)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, c := range append(append([]*ctr{}, w.init...), w.main...) {
		if c.spec.Name == container {
			return w, c, nil
		}
		names = append(names, c.spec.Name)
	}
	return nil, nil, fmt.Errorf("pod %s/%s has no container %q (containers: %s)", ns, pod, container, strings.Join(names, ", "))
}

// execIn runs cmd in c's namespaces. A non-zero exit is an error naming the
// exit code (exec probes and hooks rely on that).
func (w *podWorker) execIn(ctx context.Context, c *ctr, cmd []string, stdout, stderr io.Writer) error {
	if len(cmd) == 0 {
		return errors.New("exec: empty command")
	}
	w.mu.Lock()
	p, env, ls := c.proc, c.env, c.launch
	w.mu.Unlock()
	if p == nil || p.exited() {
		return fmt.Errorf("container %s of pod %s/%s is not running", c.spec.Name, w.ns, w.name)
	}
	argv := append([]string(nil), cmd...)
	r := commandResolver{binaries: w.k.cfg.Binaries, inVolume: inMounts(ls.Mounts)}
	// Exec is for debugging and probes: beyond the container's own
	// mapping, any host tool will do (dig, ps, an absolute host path).
	bin, err := execBinary(r, c.spec.Image, argv[0])
	if err != nil {
		return err
	}
	argv[0] = bin
	if ls.BinSource != "" && argv[0] == ls.BinSource {
		argv[0] = ls.BinTarget // the container's user cannot reach the source path
	}
	args := []string{"--target", strconv.Itoa(p.pid), "--net", "--mount", "--uts", "--wd", "--"}
	if ls.UID != nil || ls.GID != nil || len(ls.Groups) > 0 {
		priv := []string{w.k.tools.setpriv}
		if ls.UID != nil {
			priv = append(priv, "--reuid="+strconv.FormatInt(*ls.UID, 10))
		}
		if ls.GID != nil {
			priv = append(priv, "--regid="+strconv.FormatInt(*ls.GID, 10))
		}
		if len(ls.Groups) > 0 {
			gs := make([]string, len(ls.Groups))
			for i, g := range ls.Groups {
				gs[i] = strconv.FormatInt(g, 10)
			}
			priv = append(priv, "--groups="+strings.Join(gs, ","), "--")
		} else {
			priv = append(priv, "--clear-groups", "--")
		}
		args = append(args, priv...)
	}
	args = append(args, argv...)
	x := exec.CommandContext(ctx, w.k.tools.nsenter, args...)
	x.Env = envList(env)
	x.Stdout, x.Stderr = stdout, stderr
	x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	x.Cancel = func() error { return syscall.Kill(-x.Process.Pid, syscall.SIGKILL) }
	if err := x.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("command %q in container %s of pod %s/%s exited with code %d", strings.Join(cmd, " "), c.spec.Name, w.ns, w.name, ee.ExitCode())
		}
		return fmt.Errorf("exec %q in container %s of pod %s/%s: %w", strings.Join(cmd, " "), c.spec.Name, w.ns, w.name, err)
	}
	return nil
}

// execBinary maps an exec command like the container's own command, and
// otherwise accepts an existing absolute host path or a tool on the PATH.
func execBinary(r commandResolver, image, cmd string) (string, error) {
	bin, err := r.resolve(image, []string{cmd}, nil)
	if err == nil {
		return bin[0], nil
	}
	if _, serr := os.Stat(cmd); path.IsAbs(cmd) && serr == nil {
		return cmd, nil
	}
	if p, lerr := exec.LookPath(path.Base(cmd)); lerr == nil {
		return p, nil
	}
	return "", err
}

// hostMounts lists the host's mount points that a read-only root file
// system also makes read-only in the container (best effort), leaving out
// /proc, /sys, /dev and the kubelet's own root.
func (k *Kubelet) hostMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		skip := mp == "/" || seen[mp]
		for _, pre := range []string{"/proc", "/sys", "/dev", filepath.Clean(k.cfg.RootDir)} {
			skip = skip || mp == pre || strings.HasPrefix(mp, pre+"/")
		}
		if !skip {
			seen[mp] = true
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMount decodes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
