package kubelet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestKeyPayload(t *testing.T) {
	data := map[string][]byte{"redis.conf": []byte("port 6379\n"), "update-node.sh": []byte("#!/bin/sh\n")}
	got, err := keyPayload("configMap ns/c", data, nil, ptr.To(int32(0o755)), false)
	if err != nil || len(got) != 2 || got["update-node.sh"].Mode != 0o755 {
		t.Fatalf("all keys: %v %v", got, err)
	}
	got, err = keyPayload("configMap ns/c", data, []v1.KeyToPath{{Key: "redis.conf", Path: "conf/r.conf", Mode: ptr.To(int32(0o600))}}, nil, false)
	if err != nil || len(got) != 1 || got["conf/r.conf"].Mode != 0o600 {
		t.Fatalf("items: %v %v", got, err)
	}
	if _, err := keyPayload("secret ns/s", data, []v1.KeyToPath{{Key: "nope", Path: "x"}}, nil, false); err == nil || !strings.Contains(err.Error(), `secret ns/s has no key "nope"`) {
		t.Errorf("missing key: %v", err)
	}
	if got, err := keyPayload("secret ns/s", data, []v1.KeyToPath{{Key: "nope", Path: "x"}}, nil, true); err != nil || len(got) != 0 {
		t.Errorf("missing optional key: %v %v", got, err)
	}
	if _, err := keyPayload("c", data, []v1.KeyToPath{{Key: "redis.conf", Path: "../x"}}, nil, false); err == nil {
		t.Errorf("escaping path accepted")
	}
}

// TestWriteAtomicDir checks the ..data layout that fsnotify-based watchers
// (the agent's password watch) depend on.
func TestWriteAtomicDir(t *testing.T) {
	dir := t.TempDir()
	changed, err := writeAtomicDir(dir, map[string]volumeFile{"password": {[]byte("a"), 0o644}, "sub/x": {[]byte("x"), 0o600}}, -1)
	if err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	first, _ := os.Readlink(filepath.Join(dir, "..data"))
	if link, _ := os.Readlink(filepath.Join(dir, "password")); link != "..data/password" {
		t.Errorf("password link = %q", link)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sub", "x")); string(b) != "x" {
		t.Errorf("sub/x = %q", b)
	}
	if changed, err := writeAtomicDir(dir, map[string]volumeFile{"password": {[]byte("a"), 0o644}, "sub/x": {[]byte("x"), 0o600}}, -1); err != nil || changed {
		t.Errorf("unchanged payload rewritten: %v %v", changed, err)
	}
	if changed, err := writeAtomicDir(dir, map[string]volumeFile{"password": {[]byte("b"), 0o644}}, -1); err != nil || !changed {
		t.Fatalf("update: %v %v", changed, err)
	}
	second, _ := os.Readlink(filepath.Join(dir, "..data"))
	if second == first {
		t.Errorf("..data still points at %s", first)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Errorf("old version %s not removed: %v", first, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "sub")); !os.IsNotExist(err) {
		t.Errorf("removed key's link still there: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "password")); string(b) != "b" {
		t.Errorf("password = %q, want b", b)
	}
}
