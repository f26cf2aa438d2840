package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's flag reference from --help")

const (
	flagsBegin = "<!-- flags:begin (generated: go test ./cmd/redis-ha-agent -run TestREADMEFlags -update-readme) -->"
	flagsEnd   = "<!-- flags:end -->"
)

// TestREADMEFlags keeps the README's flag reference true: the section
// between the markers must be exactly every command's --help.
func TestREADMEFlags(t *testing.T) {
	const path = "../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	want.WriteString(flagsBegin + "\n")
	for _, cmd := range [][]string{{"init"}, {"run"}, {"status"}, {"nodesconf", "rewrite"}, {"sentinelconf", "render"}, {"version"}} {
		var out bytes.Buffer
		args := append(append([]string{}, cmd...), "--help")
		if err := run(args, &out, &out); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		fmt.Fprintf(&want, "\n#### `redis-ha-agent %s`\n\n```text\n%s```\n", strings.Join(cmd, " "), out.String())
	}
	want.WriteString("\n" + flagsEnd)
	s := string(readme)
	i, j := strings.Index(s, flagsBegin), strings.Index(s, flagsEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the flag reference markers %q ... %q", flagsBegin, flagsEnd)
	}
	got := s[i : j+len(flagsEnd)]
	if got == want.String() {
		return
	}
	if *updateREADME {
		if err := os.WriteFile(path, []byte(s[:i]+want.String()+s[j+len(flagsEnd):]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's flag reference is out of date with --help; run: go test ./cmd/redis-ha-agent -run TestREADMEFlags -update-readme")
}
