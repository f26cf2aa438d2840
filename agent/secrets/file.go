package secrets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"
)

// File is a whole file from a Secret volume (the ACL file), read once and
// re-read when it changes; its content never goes to logs.
type File struct {
	path, flag string
	mu         sync.RWMutex
	value      []byte
	changed    chan struct{}
}

// NewFile reads path once; an empty path is an empty file that never
// changes. flag names the setting for errors.
func NewFile(path, flag string) (*File, error) {
	f := &File{path: path, flag: flag, changed: make(chan struct{}, 1)}
	if path == "" {
		return f, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w; mount the Secret there or unset the flag", flag, path, err)
	}
	f.value = b
	return f, nil
}

// Get is the content as last read.
func (f *File) Get() []byte {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.value
}

// Path is the file's path, for errors.
func (f *File) Path() string { return f.path }

// Changed receives after the content changed; it never blocks the watcher.
func (f *File) Changed() <-chan struct{} { return f.changed }

// Run watches the file until ctx ends, re-reading it every resync. A read
// error keeps the previous content and is logged.
func (f *File) Run(ctx context.Context, log zerolog.Logger, clk clock.WithTicker, resync time.Duration) error {
	if f.path == "" {
		<-ctx.Done()
		return nil
	}
	log = log.With().Str("component", "file").Str("file", f.path).Logger()
	return watchFiles(ctx, log, clk, resync, f.flag, []string{f.path}, func() {
		b, err := os.ReadFile(f.path)
		if err != nil {
			log.Warn().Err(err).Msg("keeping the previous content")
			return
		}
		f.mu.Lock()
		same := bytes.Equal(b, f.value)
		f.value = b
		f.mu.Unlock()
		if same {
			return
		}
		log.Info().Msg("file changed; applying it")
		select {
		case f.changed <- struct{}{}:
		default:
		}
	})
}
