package localkube

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// spawner starts every component process from one OS thread that never runs
// anything else. Components get PR_SET_PDEATHSIG, which fires when the thread
// that forked them exits; forking from a dedicated thread means a component
// dies with the localkube process (even on SIGKILL) but never because the Go
// runtime retired some worker thread.
type spawner struct {
	reqs chan spawnReq
	wg   sync.WaitGroup
}

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Never unlocked: when the loop ends the thread exits with the
		// goroutine, which is what kills any component still running.
		runtime.LockOSThread()
		for r := range s.reqs {
			r.reply <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) close() {
	close(s.reqs)
	s.wg.Wait()
}

// process is one running component.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed
}

// start runs bin inside the namespace (through `ip netns exec`, which execs
// into bin so the pid is the component's), with stdout and stderr appended to
// logPath.
func (s *spawner) start(name string, ns namespace, logPath, bin string, args ...string) (*process, error) {
	return s.startCmd(name, logPath, bin, args, "ip", append([]string{"netns", "exec", ns.name, bin}, args...)...)
}

// startNetOnly runs bin in the namespace's network only (nsenter --net), in
// the host's mount namespace: containerd and the kubelet mount container
// root filesystems, volumes and cgroups that other processes (runc shims,
// the harness) must see, which `ip netns exec`'s private mount namespace and
// fresh /sys would hide.
func (s *spawner) startNetOnly(name string, ns namespace, logPath, bin string, args ...string) (*process, error) {
	return s.startCmd(name, logPath, bin, args, "nsenter", append([]string{"--net=" + ns.path(), "--", bin}, args...)...)
}

func (s *spawner) startCmd(name, logPath, bin string, args []string, launcher string, launcherArgs ...string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log for %s: %w", name, err)
	}
	fmt.Fprintf(logFile, "==== %s localkube: starting %s %v\n", time.Now().Format(time.RFC3339Nano), bin, args)
	cmd := exec.Command(launcher, launcherArgs...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	reply := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, reply: reply}
	if err := <-reply; err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the component to exit and kills its process group after grace.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit 10s after SIGKILL", p.name, pgid)
	}
}

// exitError describes how a component ended, for status and error messages.
func (p *process) exitError() error {
	if !p.exited() {
		return nil
	}
	if p.err == nil {
		return errors.New("exited with status 0")
	}
	return p.err
}
