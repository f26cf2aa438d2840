package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// epoch is the timestamp of every file and config the builder makes itself,
// so that the same inputs give the same image ID.
var epoch = time.Unix(0, 0).UTC()

// file is one entry of a layer the builder writes from scratch.
type file struct {
	path     string // without a leading slash
	typ      byte   // tar.TypeDir, TypeReg or TypeSymlink
	mode     int64  // permission bits, including sticky
	uid, gid int
	data     []byte // regular files
	target   string // symlinks
}

func dir(path string, mode int64, uid, gid int) file {
	return file{path: path, typ: tar.TypeDir, mode: mode, uid: uid, gid: gid}
}

func regular(path string, mode int64, data []byte) file {
	return file{path: path, typ: tar.TypeReg, mode: mode, data: data}
}

// layerOf writes files, in order, as an uncompressed tar layer held in
// memory (the agent and pause images are a few MB).
func layerOf(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Typeflag: f.typ, Name: f.path, Linkname: f.target, Mode: f.mode,
			Uid: f.uid, Gid: f.gid, ModTime: epoch, Format: tar.FormatPAX,
		}
		if f.typ == tar.TypeDir && !strings.HasSuffix(h.Name, "/") {
			h.Name += "/"
		}
		if f.typ == tar.TypeReg {
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.path, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

// imageOf is a one-layer linux image for this machine's architecture with
// the given runtime config.
func imageOf(layer v1.Layer, cfg v1.Config) (v1.Image, error) {
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "redis-ha-agent e2e/images " + builderVersion},
	})
}

// fileSize is for progress lines; 0 when the file can't be read.
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func humanSize(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
