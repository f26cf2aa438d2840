package sidecar

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
)

// Apply sets each user of the file anew, resets the ones the file
// dropped, and rewrites the include's block; a file that does not parse
// changes nothing.
func TestACLFileUsersApply(t *testing.T) {
	dir := t.TempDir()
	aclPath, inc := filepath.Join(dir, "users.acl"), filepath.Join(dir, "redis-ha.conf")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(inc, "masterauth p\n")
	write(aclPath, "user a on >x ~* +get\nuser b on >y ~* +set\n")
	var calls []string
	apply := func() error {
		f, err := secrets.NewFile(aclPath, "--acl-file")
		if err != nil {
			t.Fatal(err)
		}
		a := &ACLFileUsers{File: f, Managed: []string{"ha-agent"}, Include: inc,
			SetUser: func(_ context.Context, name string, rules []string) error {
				calls = append(calls, name+" "+strings.Join(rules, " "))
				return nil
			}}
		return a.Apply(context.Background())
	}
	if err := apply(); err != nil {
		t.Fatal(err)
	}
	write(aclPath, "user b on >z ~* +set\n")
	if err := apply(); err != nil {
		t.Fatal(err)
	}
	want := []string{"a reset on >x ~* +get", "b reset on >y ~* +set", "b reset on >z ~* +set", "a reset"}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("ACL SETUSER calls -want +got:\n%s", diff)
	}
	got, _ := os.ReadFile(inc)
	if !strings.HasPrefix(string(got), "masterauth p\n") || !strings.Contains(string(got), "\nuser b on >z ~* +set\n") || strings.Contains(string(got), "user a ") {
		t.Errorf("include after the change:\n%s", got)
	}
	write(aclPath, "user ha-agent on >q +@all\n")
	calls = nil
	if err := apply(); err == nil || !strings.Contains(err.Error(), "a user the agent manages") {
		t.Errorf("a file defining the agent's user: %v", err)
	}
	if calls != nil {
		t.Errorf("a file that does not parse made calls: %v", calls)
	}
}
