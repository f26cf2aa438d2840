package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// EngineName is the directory name an engine image's root filesystem gets
// from Extract: "redis-8.0.2" for docker.io/library/redis:8.0.2,
// "valkey-8.1.1" for docker.io/valkey/valkey:8.1.1.
func EngineName(ref string) string {
	repo, tag, _ := strings.Cut(path.Base(ref), ":")
	return repo + "-" + tag
}

// Extract unpacks the image's root filesystem into dir (created; a marker
// file keeps a finished extraction of the same image, so a second call is
// free). Device nodes are left out (the image has none anyway); paths that
// would leave dir are an error.
func Extract(img Image, dir string) error {
	marker := filepath.Join(dir, ".extracted-"+strings.TrimPrefix(img.ID, "sha256:"))
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := clearOld(dir); err != nil {
		return err
	}
	im, err := tarball.ImageFromPath(img.Tar, nil)
	if err != nil {
		return fmt.Errorf("read image %s from %s: %w", img.Ref, img.Tar, err)
	}
	rc := mutate.Extract(im)
	defer rc.Close()
	if err := untar(tar.NewReader(rc), dir); err != nil {
		return fmt.Errorf("extract %s into %s: %w", img.Ref, dir, err)
	}
	return os.WriteFile(marker, []byte(img.Ref+"\n"), 0o644)
}

func untar(tr *tar.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + h.Name)
		target := filepath.Join(dir, name)
		if name == "/" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := writeEntry(tr, h, dir, target); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}

func writeEntry(tr *tar.Reader, h *tar.Header, dir, target string) error {
	mode := os.FileMode(h.Mode).Perm()
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(target, mode|0o700); err != nil {
			return err
		}
		return os.Chmod(target, mode|0o700)
	case tar.TypeReg:
		_ = os.Remove(target)
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case tar.TypeSymlink:
		_ = os.Remove(target)
		return os.Symlink(h.Linkname, target)
	case tar.TypeLink:
		_ = os.Remove(target)
		return os.Link(filepath.Join(dir, filepath.Clean("/"+h.Linkname)), target)
	default: // device nodes, fifos: not needed to run a program
		return nil
	}
}

// clearOld removes an earlier extraction (one with a marker file) of
// another image; a non-empty directory without a marker is not ours and is
// left alone, with an error.
func clearOld(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, ".extracted-*"))
	if len(old) == 0 {
		return fmt.Errorf("%s is not empty and holds no earlier extraction (no .extracted-* marker): name an empty or new directory", dir)
	}
	return os.RemoveAll(dir)
}
