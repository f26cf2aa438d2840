package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
)

func TestExporterPasswordFileContent(t *testing.T) {
	tests := map[string]struct {
		reason string
		pw     string
		want   string
	}{
		"password": {
			reason: "both schemes, so components/redis-exporter-tls needs no other file",
			pw:     `p"w`,
			want:   `{"redis://localhost:6380":"p\"w","rediss://localhost:6380":"p\"w"}` + "\n",
		},
		"no auth": {
			reason: "an empty object: the exporter starts and scrapes without AUTH",
			want:   "{}\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := string(ExporterPasswordFile{Port: 6380}.Content(tc.pw))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: content (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// MirrorTo writes the file at once, and a changed password file rewrites
// it; an empty Path writes nothing.
func TestPasswordMirrorsToExporterFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "password")
	if err := os.WriteFile(src, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pw, err := NewPassword(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.MirrorTo(ExporterPasswordFile{}); err != nil {
		t.Fatalf("empty path: %v", err)
	}
	out := filepath.Join(dir, "exporter", "passwords.json")
	if err := pw.MirrorTo(ExporterPasswordFile{Path: out, Port: 6379}); err == nil || !strings.Contains(err.Error(), out) || !strings.Contains(err.Error(), "REDIS_HA_EXPORTER_PASSWORD_FILE") {
		t.Errorf("missing directory: err = %v, want one naming %s and the flag", err, out)
	}
	if err := os.Mkdir(filepath.Dir(out), 0o700); err != nil {
		t.Fatal(err)
	}
	f := ExporterPasswordFile{Path: out, Port: 6379}
	if err := pw.MirrorTo(f); err != nil {
		t.Fatal(err)
	}
	check := func(want string) {
		t.Helper()
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(f.Content(want)), string(b)); diff != "" {
			t.Errorf("exporter file (-want +got):\n%s", diff)
		}
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("exporter file mode %v, want 0600", st.Mode().Perm())
		}
	}
	check("first")
	if err := os.WriteFile(src, []byte("second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pw.reload(zerolog.Nop())
	check("second")
}
