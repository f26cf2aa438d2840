package images

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// builderVersion is part of every cache key: bump it when a change to this
// package changes what an image contains, so that cached tarballs built by
// the old code are not reused.
const builderVersion = "images/1"

// keyHash accumulates the inputs of one image into a cache key. Every field
// is written as a length-prefixed name and value, so that no two different
// input lists hash alike ("a"+"bc" vs "ab"+"c").
type keyHash struct{ h hash.Hash }

func newKey(kind string) *keyHash {
	k := &keyHash{h: sha256.New()}
	k.add("builder", builderVersion)
	k.add("kind", kind)
	return k
}

func (k *keyHash) add(name string, values ...string) {
	fmt.Fprintf(k.h, "%d:%s=%d\n", len(name), name, len(values))
	for _, v := range values {
		fmt.Fprintf(k.h, "%d:%s\n", len(v), v)
	}
}

// String is the key: hex, shortened; 64 bits are plenty for a handful of
// cached images per name.
func (k *keyHash) String() string { return hex.EncodeToString(k.h.Sum(nil))[:16] }

// hashSourceTree hashes the files of the Go module at root that the agent
// binary can depend on: go.mod, go.sum and every non-test .go file, skipping
// nested modules (e2e/ has its own go.mod), testdata, and hidden or vendor
// directories. Test files and docs are left out so that editing a test does
// not rebuild the image.
func hashSourceTree(root string) (string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "." {
				return nil
			}
			name := d.Name()
			if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if rel == "go.mod" || rel == "go.sum" || (strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash the agent's sources under %s: %w", root, err)
	}
	if len(files) == 0 {
		return "", fmt.Errorf("hash the agent's sources: no go.mod or .go files under %s (is RepoRoot the repository root?)", root)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, rel := range files {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return "", fmt.Errorf("hash the agent's sources: %w", err)
		}
		fmt.Fprintf(h, "%d:%s %d\n", len(rel), filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// lockFile takes an exclusive flock on path, waiting for another process
// (another test binary building the same image) to finish. The returned
// function releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// writeAtomic creates path through write, via a temp file in the same
// directory renamed into place only after write succeeded and the data is
// synced, so a reader never sees a half-written tarball.
func writeAtomic(path string, write func(tmp string) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	err = tmp.Chmod(0o644) // CreateTemp makes it 0600
	tmp.Close()
	if err != nil {
		return err
	}
	defer os.Remove(name) // no-op after the rename
	if err := write(name); err != nil {
		return err
	}
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	return os.Rename(name, path)
}
