package localkube

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestCleanupStaleRun fakes what a SIGKILLed run leaves (a run record whose
// owner is dead, its network namespaces, a process inside one) and checks
// that cleanupStale removes all of it while a live run stays untouched.
func TestCleanupStaleRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	const id = "dead01"
	if err := os.MkdirAll(runsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(runRecord{RunID: id, PID: dead.Process.Pid, PIDStart: 1, StateDir: t.TempDir()})
	if err := os.WriteFile(recordPath(id), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var nss []namespace
	for _, name := range []string{"lk-" + id + "-cluster", "lk-" + id + "-p7"} {
		ns, err := createNamespace(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		nss = append(nss, ns)
	}
	t.Cleanup(func() {
		for _, ns := range nss {
			_ = ns.delete(context.Background())
		}
		_ = os.Remove(recordPath(id))
	})
	sleeper := exec.Command("ip", "netns", "exec", nss[1].name, "sleep", "300")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()

	// A live run (this process) must survive the sweep.
	const liveID = "live01"
	if err := writeRunRecord(liveID, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	live, err := createNamespace(ctx, "lk-"+liveID+"-cluster")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeRun(context.Background(), liveID, "") })

	if err := cleanupStale(ctx, zerolog.Nop()); err != nil {
		t.Fatalf("cleanupStale: %v", err)
	}
	for _, ns := range nss {
		if _, err := os.Stat(ns.path()); !os.IsNotExist(err) {
			t.Errorf("netns %s still exists after cleanup (stat: %v)", ns.name, err)
		}
	}
	if _, err := os.Stat(recordPath(id)); !os.IsNotExist(err) {
		t.Errorf("run record %s still exists (stat: %v)", recordPath(id), err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = sleeper.Process.Kill()
		t.Errorf("process in the dead run's netns still runs 10s after cleanup")
	}
	if _, err := os.Stat(live.path()); err != nil {
		t.Errorf("live run's netns %s was removed: %v", live.name, err)
	}
}
