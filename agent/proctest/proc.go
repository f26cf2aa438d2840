package proctest

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is a process a test started.
type Proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// Start runs bin with args, its output appended to logPath (give the file
// the program's own logfile setting names, if any, so Tail shows both).
// When the test ends the process gets SIGTERM, and SIGKILL 10 s later; a
// failed test shows the tail of its log.
func Start(t testing.TB, logPath, bin string, args ...string) *Proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &Proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(syscall.SIGTERM, 10*time.Second)
		if t.Failed() {
			t.Logf("%s %s: log %s, tail:\n%s", bin, strings.Join(args, " "), logPath, p.Tail())
		}
	})
	return p
}

// Stop signals the process and waits for it to exit, with SIGKILL after
// grace. It says whether SIGKILL was needed.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) (killed bool) {
	select {
	case <-p.done:
		return false
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return false
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return true
	}
}

// Signal sends sig, e.g. SIGSTOP and SIGCONT to freeze a process as a
// partition would.
func (p *Proc) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.cmd.Path, err)
	}
}

// Done is closed once the process exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Log is the path of its log file.
func (p *Proc) Log() string { return p.log }

// Tail is the end of its log.
func (p *Proc) Tail() string {
	b, _ := os.ReadFile(p.log)
	return Tail(string(b), 3000)
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// NeedPrograms fails the test when one of the programs is not on PATH.
func NeedPrograms(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			t.Fatalf("%s is not on PATH (%v): this integration test runs it; install the test dependencies with `bash e2e/hack/install-deps.sh` (make deps)", name, err)
		}
	}
}
