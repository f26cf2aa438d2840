package secrets

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
	"k8s.io/utils/clock"
)

// watchFiles calls reload after any change in the directories holding
// paths, and every resync on clk, until ctx ends. Secret volumes swap a
// ..data symlink instead of writing the files, so the parent directories
// are watched, not the files; the periodic call backs up a missed event.
// flag names the setting the paths came from, for errors.
func watchFiles(ctx context.Context, log zerolog.Logger, clk clock.WithTicker, resync time.Duration, flag string, paths []string, reload func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", flag, err)
	}
	defer w.Close()
	seen := map[string]bool{}
	for _, p := range paths {
		dir := filepath.Dir(p)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("watch directory %s of %s %s: %w", dir, flag, p, err)
		}
	}
	t := clk.NewTicker(resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.Errors:
			log.Warn().Err(err).Msg("file watch error; the periodic re-read still applies changes")
		case <-w.Events:
		case <-t.C():
		}
		reload()
	}
}
