package secrets

import (
	"encoding/json"
	"fmt"

	"github.com/redis-ha-agent/redis-ha-agent/agent/atomicfile"
)

// ExporterPasswordFile is redis_exporter's password file (its
// --redis.password-file, REDIS_PASSWORD_FILE), which the agent writes from
// --password-file for the redis-exporter container beside redis-server.
// redis_exporter reads no plain password file: its file is a JSON object
// from the address it scrapes to the password. Written by the agent, the
// Secret keeps one key for every consumer and a changed password reaches
// the exporter with the rest.
type ExporterPasswordFile struct {
	// Path is where to write; empty writes nothing.
	Path string
	// Port is redis-server's port: the exporter scrapes localhost:Port, in
	// plaintext (redis://) or with components/redis-exporter-tls (rediss://).
	Port int
}

// Content is the file for password pw ("" for no auth: an empty object,
// so the exporter starts the same way with or without a password).
func (f ExporterPasswordFile) Content(pw string) []byte {
	m := map[string]string{}
	if pw != "" {
		for _, scheme := range []string{"redis", "rediss"} {
			m[fmt.Sprintf("%s://localhost:%d", scheme, f.Port)] = pw
		}
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return append(b, '\n')
}

// Write replaces the file atomically (mode 0600: the exporter runs as the
// pod's user, as the agent does); an unchanged content is not rewritten.
func (f ExporterPasswordFile) Write(pw string) error {
	if f.Path == "" {
		return nil
	}
	if _, err := atomicfile.Write(f.Path, f.Content(pw), 0o600); err != nil {
		return fmt.Errorf("write redis_exporter's password file --exporter-password-file (REDIS_HA_EXPORTER_PASSWORD_FILE) %s: %w; mount a writable volume there (components/redis-exporter mounts an emptyDir) or unset the flag", f.Path, err)
	}
	return nil
}
