package secrets

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"
)

// Password is the Redis password read from a file (a Secret volume). The
// value never goes to argv, env or logs. Secret volumes swap a ..data
// symlink, so the parent directory is watched and a periodic re-read backs
// the watch up.
type Password struct {
	path    string
	mu      sync.RWMutex
	value   string
	changed chan struct{}
	// exporter is rewritten with every new value (nothing when its Path
	// is empty).
	exporter ExporterPasswordFile
}

// ReadPasswordFile reads path once; an empty path means no auth.
func ReadPasswordFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read password from --password-file (REDIS_HA_PASSWORD_FILE) %s: %w; mount the Secret there or unset the flag for no auth", path, err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if strings.ContainsAny(pw, "\r\n") {
		return "", fmt.Errorf("--password-file (REDIS_HA_PASSWORD_FILE) %s holds more than one line: put only the password in the Secret key", path)
	}
	if pw == "" {
		return "", fmt.Errorf("--password-file (REDIS_HA_PASSWORD_FILE) %s is empty: put the password in the Secret key, or unset the flag for no auth", path)
	}
	return pw, nil
}

// NewPassword reads the file once; an empty path means no auth.
func NewPassword(path string) (*Password, error) {
	pw, err := ReadPasswordFile(path)
	if err != nil {
		return nil, err
	}
	return &Password{path: path, value: pw, changed: make(chan struct{}, 1)}, nil
}

// MirrorTo writes the exporter's password file now and again after every
// change; call it before Run.
func (p *Password) MirrorTo(f ExporterPasswordFile) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exporter = f
	return f.Write(p.value)
}

// Get returns the current password ("" for no auth).
func (p *Password) Get() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.value
}

// Changed receives after the password changed; it never blocks the watcher.
func (p *Password) Changed() <-chan struct{} { return p.changed }

// Run watches the file until ctx ends, re-reading it every resync on clk.
// A read error keeps the old password and is logged: a half-written Secret
// update must not lock the agent out.
func (p *Password) Run(ctx context.Context, log zerolog.Logger, clk clock.WithTicker, resync time.Duration) error {
	if p.path == "" {
		<-ctx.Done()
		return nil
	}
	log = log.With().Str("component", "password").Str("file", p.path).Logger()
	return watchFiles(ctx, log, clk, resync, "--password-file", []string{p.path}, func() { p.reload(log) })
}

func (p *Password) reload(log zerolog.Logger) {
	pw, err := ReadPasswordFile(p.path)
	if err != nil {
		log.Warn().Err(err).Msg("keeping the previous password")
		return
	}
	p.mu.Lock()
	same := pw == p.value
	p.value = pw
	exporter := p.exporter
	p.mu.Unlock()
	if same {
		return
	}
	log.Info().Msg("password changed; applying it")
	if err := exporter.Write(pw); err != nil {
		log.Error().Err(err).Msg("redis_exporter keeps the previous password")
	}
	select {
	case p.changed <- struct{}{}:
	default:
	}
}
