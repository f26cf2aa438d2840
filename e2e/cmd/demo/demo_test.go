package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `make demo`'s program end to end, as CI must (issue #7:
// "the demo runs in CI end to end and exits 0"): it builds this command,
// runs it against a fresh state dir and checks the exit status and that the
// narration ends with every check passed and the cluster torn down.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "demo")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/demo: %v\n%s", err, out)
	}
	state, err := os.MkdirTemp("", "demo-state-")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--state-dir", state, "--timeout", "15m")
	cmd.Stdout = io.MultiWriter(&out, testWriter{t})
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	err = cmd.Run()
	t.Logf("demo took %s", time.Since(start).Round(time.Second))
	if err != nil {
		t.Fatalf("demo failed: %v (logs kept in %s)", err, state)
	}
	for _, want := range []string{"✓ all checks passed", "✓ cluster stopped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q (logs kept in %s)", want, state)
		}
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "✗") {
			t.Errorf("demo exited 0 but printed a failed check: %s (logs kept in %s)", l, state)
		}
	}
	if !t.Failed() {
		removeIfUnmounted(t, state)
	}
}

// removeIfUnmounted deletes the state dir only when nothing is mounted
// below it: RemoveAll would otherwise follow a leftover bind mount out of it.
func removeIfUnmounted(t *testing.T, dir string) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil || strings.Contains(string(b), " "+dir+"/") {
		t.Logf("state dir %s kept: something is still mounted below it", dir)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Logf("remove state dir %s: %v", dir, err)
	}
}

// testWriter streams the narration into the test log line by line.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(l)
	}
	return len(b), nil
}
