package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// prologueTimeout bounds the wait for a container's setup.
const prologueTimeout = 30 * time.Second

// proc is one run of a container: a process group led by the container's
// main process.
type proc struct {
	pid     int
	started time.Time
	done    chan struct{} // closed after exit fields are set
	// Set before done is closed.
	exitCode int32
	signal   syscall.Signal
	finished time.Time
}

// startProcess runs argv in the pod's network namespace and a new mount and
// UTS namespace prepared by ls, with stdout and stderr appended to logPath.
func startProcess(t tools, netns string, ls launchSpec, argv, env []string, logPath string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	args := append([]string{"--net=" + netns, "--", t.unshare, "--mount", "--uts", "--propagation", "private",
		"--", "/bin/sh", "-c", ls.prologue(), "kubelet-prologue"}, argv...)
	cmd := exec.Command(t.nsenter, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	// Own process group: signals reach the whole container; Pdeathsig:
	// containers do not outlive a crashed test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The prologue writes to fd 3 once its mounts, chdir and hostname are
	// in place: only then is the container Running (and open to Exec),
	// as a real runtime reports a container only once it is created.
	readyR, readyW, err := os.Pipe()
	if err != nil {
		_ = logf.Close()
		return nil, err
	}
	defer func() { _ = readyR.Close() }()
	cmd.ExtraFiles = []*os.File{readyW}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		_ = readyW.Close()
		return nil, fmt.Errorf("start %s: %w", t.nsenter, err)
	}
	_ = readyW.Close()
	_ = readyR.SetReadDeadline(time.Now().Add(prologueTimeout))
	// EOF means the prologue failed: the exit is reported like any crash,
	// with the prologue's error in the container log.
	_, _ = readyR.Read(make([]byte, 5))
	p := &proc{pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		p.finished = time.Now()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				p.signal = ws.Signal()
				p.exitCode = 128 + int32(ws.Signal())
			} else {
				p.exitCode = int32(ee.ExitCode())
			}
		default:
			p.exitCode = 128
		}
		// The container is gone: so are its children, as when a real
		// container's PID 1 exits.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		close(p.done)
	}()
	return p, nil
}

// signal sends sig to the container's process group.
func (p *proc) signalGroup(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	err := syscall.Kill(-p.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace (or short once ctx ends), then
// SIGKILLs the group. Processes frozen with SIGSTOP get SIGCONT so they can
// act on SIGTERM.
func (p *proc) stop(ctx context.Context, grace, short time.Duration) {
	if p.exited() {
		return
	}
	_ = p.signalGroup(syscall.SIGTERM)
	_ = p.signalGroup(syscall.SIGCONT)
	t := time.NewTimer(grace)
	defer t.Stop()
	kill := func() {
		_ = p.signalGroup(syscall.SIGKILL)
		<-p.done
	}
	select {
	case <-p.done:
	case <-t.C:
		kill()
	case <-ctx.Done():
		select {
		case <-p.done:
		case <-time.After(short):
			kill()
		}
	}
	// Children left in the group (the leader exited first) go too.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
}
