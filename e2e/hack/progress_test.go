package hack

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runProgress runs progress.sh with PROGRESS_INTERVAL=interval and returns
// its stdout, stderr and exit code.
func runProgress(t *testing.T, interval string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"progress.sh"}, args...)...)
	cmd.Env = append(os.Environ(), "PROGRESS_INTERVAL="+interval)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run progress.sh: %v", err)
	}
	return out.String(), errOut.String(), code
}

// A warm run ends before the first line is due: only the command's own
// output, and its exit status.
func TestProgressWarmRunAddsNothing(t *testing.T) {
	start := time.Now()
	stdout, stderr, code := runProgress(t, "30", "Kubernetes build", "8.7 min cold",
		"sh", "-c", "echo built; echo 'go: downloading x' >&2; exit 3")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a command that ends at once took %s under progress.sh", took)
	}
	if stdout != "built\n" || stderr != "go: downloading x\n" {
		t.Errorf("stdout %q, stderr %q; want only the command's own %q and %q", stdout, stderr, "built\n", "go: downloading x\n")
	}
	if code != 3 {
		t.Errorf("exit status %d, want the command's 3", code)
	}
}

// A long run prints, every interval, the label, the time so far, the cold
// figure, and what the command's descendants are building: here a fake
// `go build -o .../kube-apiserver.tmp` (as build-k8s.sh runs it, and with
// -C DIR as the Makefile does) whose fake compiler compiles a named
// package.
func TestProgressNamesWhatIsBuilding(t *testing.T) {
	tests := map[string]struct{ goFlags []string }{
		"go build":        {},
		"go -C DIR build": {goFlags: []string{"-C", "/tmp"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeScript(t, filepath.Join(dir, "compile"), "sleep 4\n")
			writeScript(t, filepath.Join(dir, "go"),
				`"$(dirname "$0")/compile" -o /tmp/x.a -trimpath -p k8s.io/apiserver/pkg/server -lang=go1.24 server.go`+"\necho linked\n")
			args := []string{"Kubernetes build and images", "cold: 8.7 min", filepath.Join(dir, "go")}
			args = append(args, tc.goFlags...)
			args = append(args, "build", "-trimpath", "-ldflags", "-s -w", "-o", "/cache/bin/kube-apiserver.tmp", "k8s.io/kubernetes/cmd/kube-apiserver")
			stdout, stderr, code := runProgress(t, "1", args...)
			if code != 0 || stdout != "linked\n" {
				t.Fatalf("exit status %d, stdout %q; want 0 and the command's %q\nstderr:\n%s", code, stdout, "linked\n", stderr)
			}
			tick := regexp.MustCompile(`^  … \d\d:\d\d:\d\d Kubernetes build and images: 0m0(\d)s so far \(cold: 8\.7 min\); now: (.*)$`)
			var ticks, named int
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			for _, l := range lines[:len(lines)-1] {
				m := tick.FindStringSubmatch(l)
				if m == nil {
					t.Errorf("stderr line %q is not a progress line", l)
					continue
				}
				ticks++
				if m[2] == "go build kube-apiserver; compiling k8s.io/apiserver/pkg/server" {
					named++
				}
			}
			if ticks < 2 || named == 0 {
				t.Errorf("%d progress lines, %d naming `go build kube-apiserver; compiling k8s.io/apiserver/pkg/server`; want at least 2 lines in a 4 s run at a 1 s interval, and the build named:\n%s", ticks, named, stderr)
			}
			done := regexp.MustCompile(`^  … \d\d:\d\d:\d\d Kubernetes build and images: done in 0m0[4-9]s \(exit status 0\)$`)
			if last := lines[len(lines)-1]; !done.MatchString(last) {
				t.Errorf("last stderr line %q; want %s", last, done)
			}
		})
	}
}

func TestProgressRefusesBadUsage(t *testing.T) {
	tests := map[string]struct {
		interval string
		args     []string
		want     string
	}{
		"no command": {
			interval: "30",
			args:     []string{"label", "expected"},
			want:     "usage: progress.sh LABEL EXPECTED COMMAND [ARGS...] (got 2 arguments)",
		},
		"interval not a number": {
			interval: "30s",
			args:     []string{"label", "expected", "true"},
			want:     "PROGRESS_INTERVAL=30s is not a whole number of seconds >= 1",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, stderr, code := runProgress(t, tc.interval, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit status %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}
