package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
)

// Init writes redis_exporter's password file before anything else of the
// mode (the exporter container starts after the init containers), from
// --password-file, or {} without one; a password file it cannot read
// fails init with the flag's name.
func TestInitWritesExporterPasswordFile(t *testing.T) {
	tests := map[string]struct {
		reason   string
		password string // "" for no --password-file
		want     string
	}{
		"password": {reason: "the Secret's password for localhost:--redis-port", password: "s3cret\n", want: "s3cret"},
		"no auth":  {reason: "an empty object, so the exporter starts the same way"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := config.Config{Mode: "neither", RedisPort: 6380, ExporterPasswordFile: filepath.Join(dir, "passwords.json")}
			if tc.password != "" {
				cfg.PasswordFile = filepath.Join(dir, "password")
				if err := os.WriteFile(cfg.PasswordFile, []byte(tc.password), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// The unknown mode fails init after the file is written.
			if err := Init(context.Background(), cfg, zerolog.Nop(), InitEnv{}); err == nil || !strings.Contains(err.Error(), "neither") {
				t.Fatalf("Init: err = %v, want the unknown mode's", err)
			}
			got, err := os.ReadFile(cfg.ExporterPasswordFile)
			if err != nil {
				t.Fatalf("%s: %v", tc.reason, err)
			}
			want := secrets.ExporterPasswordFile{Port: 6380}.Content(tc.want)
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
	t.Run("unreadable password file", func(t *testing.T) {
		dir := t.TempDir()
		cfg := config.Config{Mode: config.ModeSentinel, RedisPort: 6379, PasswordFile: filepath.Join(dir, "missing"), ExporterPasswordFile: filepath.Join(dir, "passwords.json")}
		err := Init(context.Background(), cfg, zerolog.Nop(), InitEnv{})
		if err == nil || !strings.Contains(err.Error(), "REDIS_HA_PASSWORD_FILE") {
			t.Fatalf("Init: err = %v, want one naming REDIS_HA_PASSWORD_FILE", err)
		}
		if _, err := os.Stat(cfg.ExporterPasswordFile); err == nil {
			t.Errorf("the exporter's file was written without a password")
		}
	})
}
