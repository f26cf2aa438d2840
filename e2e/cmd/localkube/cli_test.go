package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

const podManifest = `apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: redis
    image: redis:7.0
    command: ["redis-server", "--save", ""]
`

// TestCLILifecycle drives the real binary the way a person does: up (the
// daemon stays behind), status, apply, exec, faults, down, and checks that
// down leaves no network namespace of the run behind.
func TestCLILifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "localkube")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := filepath.Join(dir, "state")
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), "LOCALKUBE_STATE_DIR="+state)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("localkube %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	out := must("up")
	t.Cleanup(func() { _, _ = run("down") })
	if !strings.Contains(out, filepath.Join(state, "kubeconfig")) {
		t.Fatalf("up did not print the kubeconfig path:\n%s", out)
	}
	m := regexp.MustCompile(`cluster (\w+) ready`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("up did not report a ready cluster:\n%s", out)
	}
	runID := m[1]
	if again := must("up"); !strings.Contains(again, "already running") {
		t.Errorf("second up: %q, want it to find the running cluster", again)
	}
	status := must("status")
	for _, want := range []string{"node-a", "node-b", "node-c", "kube-apiserver"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}

	manifest := filepath.Join(dir, "pod.yaml")
	if err := os.WriteFile(manifest, []byte(podManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	must("apply", "-f", manifest)
	pong := func() {
		t.Helper()
		var last string
		if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			out, err := run("exec", "p", "--", "redis-cli", "ping")
			last = out
			return err == nil && strings.TrimSpace(out) == "PONG", nil
		}); err != nil {
			t.Fatalf("exec p -- redis-cli ping never answered PONG: %v (last: %q)", err, last)
		}
	}
	pong()
	must("partition", "p")
	if s := must("status"); !strings.Contains(s, "partition") {
		t.Errorf("status does not show the partition:\n%s", s)
	}
	must("heal", "p")
	must("kill-pod", "p")
	pong() // the container restarts in the same sandbox

	must("down")
	nss, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if strings.HasPrefix(ns.Name(), "lk-"+runID+"-") {
			t.Errorf("netns %s left after down", ns.Name())
		}
	}
	if _, err := run("status"); err == nil {
		t.Error("status succeeded after down")
	}
}
