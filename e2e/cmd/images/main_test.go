package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildPrintsRefAndTar(t *testing.T) {
	cache := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run([]string{"build", "--only", "pause", "--cache", cache}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	f := strings.Fields(stdout.String())
	if len(f) != 2 || f[0] != "registry.k8s.io/pause:3.10" || filepath.Dir(f[1]) != cache {
		t.Fatalf("stdout %q, want one line `registry.k8s.io/pause:3.10 %s/<file>.tar`", stdout.String(), cache)
	}
	if _, err := os.Stat(f[1]); err != nil {
		t.Error(err)
	}
	if !strings.Contains(stderr.String(), "building pause") || !strings.Contains(stderr.String(), "redis:5.0.5-alpine") {
		t.Errorf("stderr should show progress and the stand-ins:\n%s", stderr.String())
	}
}

func TestFindRepoRoot(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "e2e", "images")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "go.mod"), []byte("module "+rootModule+"\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(root, "e2e", "go.mod"), []byte("module "+rootModule+"/e2e\n"), 0o644)
	got, err := findRepoRoot(sub)
	if err != nil || got != root {
		t.Errorf("findRepoRoot(%s) = %q, %v; want %s (not the nested e2e module)", sub, got, err, root)
	}
	if _, err := findRepoRoot(t.TempDir()); err == nil || !strings.Contains(err.Error(), "--repo-root") {
		t.Errorf("outside the repository: %v, want an error pointing to --repo-root", err)
	}
}
