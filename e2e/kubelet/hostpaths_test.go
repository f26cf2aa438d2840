package kubelet

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestHostPathsKeepsMountPointsInUse: a mount point another mount namespace
// still uses is left in place (removing it would detach that mount).
func TestHostPathsKeepsMountPointsInUse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	base := t.TempDir()
	h := &hostPaths{record: filepath.Join(base, "record")}
	// "link" is a symlink to "a", like /var/run → /run: mountinfo shows
	// the resolved path.
	if err := os.Mkdir(filepath.Join(base, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	used, free := filepath.Join(base, "link", "used"), filepath.Join(base, "b", "free")
	for _, p := range []string{used, free} {
		if err := h.ensure(p, false); err != nil {
			t.Fatal(err)
		}
	}
	src := t.TempDir()
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
		"mount --bind "+src+" "+used+" && echo ok && exec sleep 60")
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	buf := make([]byte, 3)
	if _, err := out.Read(buf); err != nil || string(buf) != "ok\n" {
		t.Fatalf("holder did not mount: %q %v", buf, err)
	}
	if err := h.removeAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(used); err != nil {
		t.Errorf("mount point in use was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(base, "b")); !os.IsNotExist(err) {
		t.Errorf("unused mount point and its created parent not removed: %v", err)
	}
}
