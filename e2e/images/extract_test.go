package images

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// untar keeps every path inside the target directory: a name or a hard
// link climbing out with ".." lands inside it, and files, links and
// directories come out with their content and modes.
func TestUntarStaysInside(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "usr/bin/redis-server", Typeflag: tar.TypeReg, Mode: 0o755}, "binary")
	add(&tar.Header{Name: "usr/bin/redis-sentinel", Typeflag: tar.TypeSymlink, Linkname: "redis-server"}, "")
	add(&tar.Header{Name: "../../escape", Typeflag: tar.TypeReg, Mode: 0o644}, "outside?")
	add(&tar.Header{Name: "usr/bin/hard", Typeflag: tar.TypeLink, Linkname: "../usr/bin/redis-server"}, "")
	add(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}, "")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "root")
	if err := untar(tar.NewReader(&buf), dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "usr/bin/hard")); err != nil || string(b) != "binary" {
		t.Errorf("hard link: %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "usr/bin/redis-sentinel")); err != nil || l != "redis-server" {
		t.Errorf("symlink: %q, %v", l, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err != nil {
		t.Errorf("../../escape should land inside as escape: %v", err)
	}
	if _, err := os.Stat(filepath.Join(parent, "escape")); err == nil {
		t.Error("../../escape was written outside the target directory")
	}
	if _, err := os.Stat(filepath.Join(dir, "dev/null")); err == nil {
		t.Error("a device node was created")
	}
}

// clearOld refuses a non-empty directory that is no extraction of ours.
func TestClearOldRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.rdb"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := clearOld(dir)
	if err == nil || !strings.Contains(err.Error(), "no earlier extraction") {
		t.Fatalf("clearOld(a dir with a user file) = %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data.rdb")); err != nil {
		t.Fatalf("the user's file is gone: %v", err)
	}
}
