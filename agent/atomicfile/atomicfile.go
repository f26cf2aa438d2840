package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces path with data so that a crash at any instant
// leaves either the old or the new content, never a truncated file: temp file
// in the same directory, fsync, rename, fsync of the directory. An existing
// file keeps its mode and owner. Identical content is not rewritten; the
// result says whether a write happened.
func Write(path string, data []byte, defaultMode fs.FileMode) (written bool, err error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read %s before replacing it: %w", path, err)
	}
	mode, uid, gid := defaultMode, -1, -1
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("create temp file beside %s (is %s writable?): %w", path, dir, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmpName) // only our own temp file, never the target
		}
	}()
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("write temp file for %s: %w", path, err)
	}
	if err = os.Chmod(tmpName, mode); err != nil {
		return false, fmt.Errorf("chmod temp file for %s: %w", path, err)
	}
	if uid >= 0 && (uid != os.Getuid() || gid != os.Getgid()) {
		if err = os.Chown(tmpName, uid, gid); err != nil {
			return false, fmt.Errorf("keep owner %d:%d of %s: %w", uid, gid, path, err)
		}
	}
	if err = os.Rename(tmpName, path); err != nil {
		return false, fmt.Errorf("replace %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return true, fmt.Errorf("open %s to fsync it: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return true, fmt.Errorf("fsync %s: %w", dir, err)
	}
	return true, nil
}
