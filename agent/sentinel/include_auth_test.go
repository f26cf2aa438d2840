package sentinel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The include follows the rotation's steps, so a redis-server restarted at
// any of them accepts what its peers log in with.
func TestRewriteIncludeAuth(t *testing.T) {
	const initial = "replicaof 10.0.0.1 6379\nmasterauth p1\nrequirepass p1\n"
	cases := map[string]struct {
		reason     string
		masterauth string
		accept     []string
		want       string
	}{
		"Accept": {
			reason:     "step 1: both accepted as a user line, masterauth still the old",
			masterauth: "p1", accept: []string{"p1", "p2"},
			want: "replicaof 10.0.0.1 6379\nmasterauth p1\nuser default on ~* &* +@all >p1 >p2\n",
		},
		"RolledBackAccept": {
			reason:     "the same password twice is one password: requirepass",
			masterauth: "p1", accept: []string{"p1", "p1"},
			want: "replicaof 10.0.0.1 6379\nmasterauth p1\nrequirepass p1\n",
		},
		"Switch": {
			reason:     "step 2: masterauth only; the accepted lines stay as they are",
			masterauth: "p2",
			want:       "replicaof 10.0.0.1 6379\nmasterauth p2\nrequirepass p1\n",
		},
		"Drop": {
			reason:     "step 3 (and a plain change): one password, as init writes it",
			masterauth: "p2", accept: []string{"p2"},
			want: "replicaof 10.0.0.1 6379\nmasterauth p2\nrequirepass p2\n",
		},
		"AuthOff": {
			reason: "no password: no auth lines",
			accept: []string{""},
			want:   "replicaof 10.0.0.1 6379\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "redis-ha.conf")
			if err := os.WriteFile(path, []byte(initial), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := rewriteIncludeAuth(path, tc.masterauth, tc.accept); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("%s\ninclude: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRewriteIncludeAuthKeepsUserLineAtSwitch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "redis-ha.conf")
	if err := os.WriteFile(path, []byte("masterauth p1\nuser default on ~* &* +@all >p1 >p2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rewriteIncludeAuth(path, "p2", nil); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := "masterauth p2\nuser default on ~* &* +@all >p1 >p2\n"; string(got) != want {
		t.Errorf("include after the switch:\n%s\nwant:\n%s", got, want)
	}
}

func TestRewriteIncludeAuthRefusesUnsafePassword(t *testing.T) {
	path := filepath.Join(t.TempDir(), "redis-ha.conf")
	if err := os.WriteFile(path, []byte("masterauth p1\nrequirepass p1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := rewriteIncludeAuth(path, "p1", []string{"p1", "has space"})
	if err == nil {
		t.Fatal("a password with a space was written into the include")
	}
	got, _ := os.ReadFile(path)
	if string(got) != "masterauth p1\nrequirepass p1\n" {
		t.Errorf("include changed after a refused password:\n%s", got)
	}
}
