package kubelet

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// volumeFile is one file of a configMap/secret/downwardAPI/projected volume.
type volumeFile struct {
	Data []byte
	Mode os.FileMode
}

// writeAtomicDir publishes payload in dir the way the kubelet's AtomicWriter
// does, so programs that watch these volumes (fsnotify on the parent, a
// swapped ..data symlink) see what they see on a real node:
//
//	dir/..2006_01_02_15_04_05.NNNN/<files>   the current version
//	dir/..data -> ..2006_...                 swapped atomically with rename
//	dir/<top-level name> -> ..data/<name>
//
// It does nothing when the payload is unchanged. gid >= 0 sets the files'
// group (fsGroup) and makes them group-readable.
func writeAtomicDir(dir string, payload map[string]volumeFile, gid int64) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	dataLink := filepath.Join(dir, "..data")
	old, _ := os.Readlink(dataLink)
	if old != "" && sameContent(filepath.Join(dir, old), payload, gid) {
		return false, nil
	}
	ts, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return false, err
	}
	for p, f := range payload {
		full := filepath.Join(ts, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(full, f.Data, f.Mode); err != nil {
			return false, err
		}
		mode := f.Mode
		if gid >= 0 {
			if err := os.Chown(full, 0, int(gid)); err != nil {
				return false, err
			}
			mode |= 0o040
		}
		if err := os.Chmod(full, mode); err != nil { // WriteFile's mode is subject to umask
			return false, err
		}
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(ts), tmpLink); err != nil {
		return false, err
	}
	if err := os.Rename(tmpLink, dataLink); err != nil {
		return false, err
	}
	want := map[string]bool{}
	for p := range payload {
		want[strings.Split(p, "/")[0]] = true
	}
	for top := range want {
		link := filepath.Join(dir, top)
		if t, err := os.Readlink(link); err == nil && t == filepath.Join("..data", top) {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join("..data", top), link); err != nil {
			return false, err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		n := e.Name()
		switch {
		case n == "..data":
		case strings.HasPrefix(n, ".."):
			if n != filepath.Base(ts) {
				_ = os.RemoveAll(filepath.Join(dir, n))
			}
		case !want[n]:
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
	return true, nil
}

// sameContent reports whether dir holds exactly payload.
func sameContent(dir string, payload map[string]volumeFile, gid int64) bool {
	n := 0
	same := true
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f, ok := payload[rel]
		info, ierr := d.Info()
		if !ok || ierr != nil {
			same = false
			return fs.SkipAll
		}
		mode := f.Mode
		if gid >= 0 {
			mode |= 0o040
		}
		data, rerr := os.ReadFile(p)
		if rerr != nil || !bytes.Equal(data, f.Data) || info.Mode().Perm() != mode.Perm() {
			same = false
			return fs.SkipAll
		}
		n++
		return nil
	})
	return err == nil && same && n == len(payload)
}

// checkVolumePath rejects item paths that would escape the volume.
func checkVolumePath(p string) error {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "..") || strings.Contains(p, "/../") || filepath.Clean(p) != p {
		return fmt.Errorf("volume item path %q must be relative, clean, and not start with '..'", p)
	}
	return nil
}
