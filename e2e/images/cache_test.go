package images

import (
	"os"
	"path/filepath"
	"testing"
)

func TestKeysChangeWithInputs(t *testing.T) {
	base := debianImages()[0]
	agent := agentKey("v1", "src", "go1.26.8", "amd64", "ca")
	pause := pauseKey("src", []string{"gcc 12", "libc"})
	debian := base.key("mmdebstrap 1.3.5")

	changed := map[string]struct {
		reason string
		a, b   string
	}{
		"agent tag":         {"the tag is stamped into the binary", agent, agentKey("v2", "src", "go1.26.8", "amd64", "ca")},
		"agent source":      {"a source edit changes the binary", agent, agentKey("v1", "src2", "go1.26.8", "amd64", "ca")},
		"agent go":          {"another toolchain builds another binary", agent, agentKey("v1", "src", "go1.26.9", "amd64", "ca")},
		"agent ca":          {"the CA bundle is copied in", agent, agentKey("v1", "src", "go1.26.8", "amd64", "ca2")},
		"agent field edge":  {"fields are length-prefixed", agentKey("v1", "src", "go", "1", "ca"), agentKey("v1", "src", "go1", "", "ca")},
		"pause source":      {"pause.c", pause, pauseKey("src2", []string{"gcc 12", "libc"})},
		"pause gcc":         {"compiler", pause, pauseKey("src", []string{"gcc 13", "libc"})},
		"debian mmdebstrap": {"another mmdebstrap may lay the tree out differently", debian, base.key("mmdebstrap 1.5.0")},
		"debian packages": {"package list", debian, func() string {
			d := base
			d.include = append([]string{"tzdata"}, d.include...)
			return d.key("mmdebstrap 1.3.5")
		}()},
		"debian suite": {"suite", debian, func() string { d := base; d.suite = "trixie"; return d.key("mmdebstrap 1.3.5") }()},
		"debian user":  {"the user is created by a hook", debian, func() string { d := base; d.user = "valkey"; return d.key("mmdebstrap 1.3.5") }()},
		"debian sources": {"sources", debian, func() string {
			d := base
			d.apt = append(append([]string(nil), d.apt...), "deb http://deb.debian.org/debian bookworm-backports main")
			return d.key("mmdebstrap 1.3.5")
		}()},
		"debian cmd": {"config", debian, func() string { d := base; d.cmd = "redis-sentinel"; return d.key("mmdebstrap 1.3.5") }()},
	}
	for name, tc := range changed {
		t.Run(name, func(t *testing.T) {
			if tc.a == tc.b {
				t.Errorf("key did not change (%s): %s", tc.reason, tc.a)
			}
		})
	}
	if again := agentKey("v1", "src", "go1.26.8", "amd64", "ca"); again != agent {
		t.Errorf("agentKey is not deterministic: %s then %s", agent, again)
	}
	if again := debianImages()[0].key("mmdebstrap 1.3.5"); again != debian {
		t.Errorf("debian key is not deterministic: %s then %s", debian, again)
	}
	seen := map[string]string{}
	for _, d := range debianImages() {
		k := d.key("mmdebstrap 1.3.5")
		if other, ok := seen[k]; ok {
			t.Errorf("%s and %s have the same key %s", d.name, other, k)
		}
		seen[k] = d.name
	}
}

func TestHashSourceTree(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module x\n")
	write("go.sum", "")
	write("cmd/x/main.go", "package main\n")
	write("e2e/go.mod", "module x/e2e\n")
	hash := func() string {
		t.Helper()
		h, err := hashSourceTree(root)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h0 := hash()

	steps := []struct {
		reason     string
		rel, data  string
		wantChange bool
	}{
		{"a test file does not go into the binary", "cmd/x/main_test.go", "package main\n", false},
		{"nested modules are built separately", "e2e/images/x.go", "package images\n", false},
		{"testdata", "cmd/x/testdata/a.go", "package a\n", false},
		{"docs", "README.md", "# x\n", false},
		{"a source edit", "cmd/x/main.go", "package main\n\nfunc main() {}\n", true},
		{"a new package", "lib/lib.go", "package lib\n", true},
		{"go.sum", "go.sum", "x v1.0.0 h1:abc=\n", true},
		{"go.mod", "go.mod", "module x\n\ngo 1.26\n", true},
	}
	prev := h0
	for _, s := range steps {
		write(s.rel, s.data)
		h := hash()
		if changed := h != prev; changed != s.wantChange {
			t.Errorf("after writing %s (%s): hash changed = %v, want %v", s.rel, s.reason, changed, s.wantChange)
		}
		prev = h
	}
}

func TestHashSourceTreeEmpty(t *testing.T) {
	if _, err := hashSourceTree(t.TempDir()); err == nil {
		t.Error("hashSourceTree of an empty directory: no error, want one saying RepoRoot is wrong")
	}
}
