package kubelet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// hostPaths records the mount point directories (and files) the kubelet had
// to create on the shared host root filesystem, e.g. /data for a volumeMount.
// They stay empty on the host (the volume is mounted only inside containers'
// mount namespaces) and are removed when Run returns. They are never removed
// earlier: rmdir of a directory that is a mount point in another namespace
// detaches that mount, which would pull a volume out of a running pod.
type hostPaths struct {
	record string // file listing them, for a crashed run's successor
	mu     sync.Mutex
	paths  []string
}

// ensure creates p (a directory, or an empty file when file is set) and any
// missing parent, recording each thing it creates.
func (h *hostPaths) ensure(p string, file bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	p = filepath.Clean(p)
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	var missing []string
	for d := filepath.Dir(p); d != "/"; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append([]string{d}, missing...)
	}
	for _, d := range missing {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create mount point parent %s on the host: %w", d, err)
		}
		h.add(d)
	}
	var err error
	if file {
		var f *os.File
		f, err = os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			err = f.Close()
		}
	} else {
		err = os.Mkdir(p, 0o755)
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create mount point %s on the host: %w", p, err)
	}
	h.add(p)
	return nil
}

func (h *hostPaths) add(p string) {
	h.paths = append(h.paths, p)
	if f, err := os.OpenFile(h.record, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		_, _ = fmt.Fprintln(f, p)
		_ = f.Close()
	}
}

// removeAll removes what ensure created, newest first, only while empty.
func (h *hostPaths) removeAll() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	inUse := mountPointsInUse()
	for i := len(h.paths) - 1; i >= 0; i-- {
		p := h.paths[i]
		if busy(p, inUse) {
			// Another node agent (a second cluster on this machine) has a
			// container mounted there: removing it would detach that mount.
			continue
		}
		if err := removeIfEmpty(p); err != nil {
			errs = append(errs, err)
		}
	}
	h.paths = nil
	if len(errs) == 0 {
		_ = os.Remove(h.record)
	}
	return errors.Join(errs...)
}

// cleanStale removes the paths a previous run recorded but did not remove.
func (h *hostPaths) cleanStale() error {
	data, err := os.ReadFile(h.record)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.paths = strings.Fields(string(data))
	h.mu.Unlock()
	return h.removeAll()
}

// mountPointsInUse lists the mount points of every mount namespace on the
// machine (one /proc/<pid>/mountinfo per namespace).
func mountPointsInUse() map[string]bool {
	out := map[string]bool{}
	seen := map[string]bool{}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		ns, err := os.Readlink(filepath.Join(proc, "ns", "mnt"))
		if err != nil || seen[ns] {
			continue
		}
		seen[ns] = true
		data, err := os.ReadFile(filepath.Join(proc, "mountinfo"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 4 {
				out[unescapeMount(f[4])] = true
			}
		}
	}
	return out
}

// busy reports whether p or something below it is a mount point anywhere.
// mountinfo shows resolved paths (/run/secrets for /var/run/secrets).
func busy(p string, inUse map[string]bool) bool {
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	for m := range inUse {
		if m == p || strings.HasPrefix(m, p+"/") {
			return true
		}
	}
	return false
}

func removeIfEmpty(p string) error {
	info, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !info.IsDir() && info.Size() > 0 {
		return fmt.Errorf("mount point file %s is not empty any more: left in place", p)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		if info.IsDir() {
			return fmt.Errorf("mount point %s is not empty any more (something wrote to the host path): left in place: %w", p, err)
		}
		return err
	}
	return nil
}
