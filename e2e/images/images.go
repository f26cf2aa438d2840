package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image is one built image.
type Image struct {
	Ref string // fully qualified, e.g. "docker.io/library/redis:7.0.15"
	Tar string // docker-archive that `ctr -n k8s.io images import` loads under Ref
	ID  string // digest of the image config (what crictl calls the image ID), for logs
}

// Options say what to build and where.
type Options struct {
	// CacheDir holds the tarballs. Empty: images/ under $REDIS_HA_E2E_CACHE,
	// else under $XDG_CACHE_HOME (or ~/.cache)/redis-ha-agent-e2e, the same
	// root e2e/hack/build-k8s.sh uses.
	CacheDir string
	// RepoRoot is the repository root; the agent is built from
	// ./cmd/redis-ha-agent there, and its tag read from its manifests.
	RepoRoot string
	// AgentTag tags the agent image. Empty: the tag the manifests name
	// (manifests/components/agent-sidecar/sidecar-container.yaml).
	AgentTag string
	// Only builds a subset, by short name (see Names); empty builds all.
	Only []string
	// Log gets one progress line per step; nil discards them.
	Log io.Writer
}

// Names are the short names Options.Only accepts, in build order.
func Names() []string {
	return []string{"agent", "pause", "redis-7.0", "valkey-8.0", "redis-8.0", "valkey-8.1", "redis-exporter"}
}

// Aliases maps images that manifests (ours, the seeds', the baseline's) name
// but that can't be built here to the built image that stands in for them.
// Callers print this table and tag the stand-in under the alias.
func Aliases() map[string]string {
	return map[string]string{
		// Seeds 002 and 003: Debian has no Redis 5; 7.0 reads their configs.
		"docker.io/library/redis:5.0.5-alpine": redis70Ref,
		// manifests/base and e2e/testdata/baseline-sentinel name the 7.0
		// line; 7.0.15 is its last release.
		"docker.io/library/redis:7.0": redis70Ref,
		// The Linux pause binary of 3.10.1 is that of 3.10 (only the Windows
		// base changed); kubeadm 1.34 names 3.10.1, containerd 2.x 3.10.
		"registry.k8s.io/pause:3.10.1": pauseRef,
	}
}

// target is one image the builder can make.
type target struct {
	name string
	ref  string
	// what says how it is built, for the progress line.
	what string
	// key hashes every input; cheap, run on every Build.
	key func(ctx context.Context) (string, error)
	// build makes the image; work is a private temp directory.
	build func(ctx context.Context, work string, log io.Writer) (v1.Image, error)
}

// Build builds (or finds in the cache) the images o asks for, in the order
// of Names, and returns them in that order.
func Build(ctx context.Context, o Options) ([]Image, error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	for _, n := range o.Only {
		if !slices.Contains(Names(), n) {
			return nil, fmt.Errorf("unknown image %q in Options.Only: want one of %s", n, strings.Join(Names(), ", "))
		}
	}
	if o.CacheDir == "" {
		d, err := defaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.CacheDir = d
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	ts, err := targets(o)
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, t := range ts {
		img, err := buildCached(ctx, o.CacheDir, t, log)
		if err != nil {
			return out, fmt.Errorf("image %s (%s): %w", t.name, t.ref, err)
		}
		out = append(out, img)
	}
	return out, nil
}

func selected(o Options, n string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, n) }

func targets(o Options) ([]target, error) {
	var ts []target
	if selected(o, "agent") {
		t, err := agentTarget(o.RepoRoot, o.AgentTag)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	if selected(o, "pause") {
		ts = append(ts, pauseTarget())
	}
	for _, d := range debianImages() {
		if selected(o, d.name) {
			ts = append(ts, d.target(filepath.Join(o.CacheDir, "debs")))
		}
	}
	if selected(o, "redis-exporter") {
		ts = append(ts, exporterTarget())
	}
	return ts, nil
}

func defaultCacheDir() (string, error) {
	if d := os.Getenv("REDIS_HA_E2E_CACHE"); d != "" {
		return filepath.Join(d, "images"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no image cache directory: set Options.CacheDir or $REDIS_HA_E2E_CACHE (%w)", err)
	}
	return filepath.Join(d, "redis-ha-agent-e2e", "images"), nil
}

// buildCached returns t's tarball from the cache, building it first if no
// tarball for its current key is there. A per-image flock makes a second
// process wait for the first one's build and then find it cached.
func buildCached(ctx context.Context, cache string, t target, log io.Writer) (Image, error) {
	key, err := t.key(ctx)
	if err != nil {
		return Image{}, err
	}
	path := filepath.Join(cache, t.name+"-"+key+".tar")
	unlock, err := lockFile(filepath.Join(cache, t.name+".lock"))
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	if id, err := tarID(path); err == nil {
		now := time.Now()
		_ = os.Chtimes(path, now, now) // marks it in use for pruneOld
		fmt.Fprintf(log, "cached %s %s\n", t.name, id)
		return Image{Ref: t.ref, Tar: path, ID: id}, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(log, "rebuilding %s: cached %s is unreadable: %v\n", t.name, path, err)
	}

	fmt.Fprintf(log, "building %s (%s) ...\n", t.name, t.what)
	start := time.Now()
	work, err := os.MkdirTemp(cache, "."+t.name+"-work-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(work)
	img, err := t.build(ctx, work, log)
	if err != nil {
		return Image{}, err
	}
	tag, err := name.NewTag(t.ref, name.StrictValidation)
	if err != nil {
		return Image{}, fmt.Errorf("image reference %q: %w", t.ref, err)
	}
	if err := writeAtomic(path, func(tmp string) error { return tarball.WriteToFile(tmp, tag, img) }); err != nil {
		return Image{}, fmt.Errorf("write %s: %w", path, err)
	}
	id, err := tarID(path)
	if err != nil {
		return Image{}, fmt.Errorf("read back %s: %w", path, err)
	}
	pruneOld(cache, t.name, path)
	fmt.Fprintf(log, "built %s %s in %s (%s)\n", t.name, id, time.Since(start).Round(time.Second), humanSize(fileSize(path)))
	return Image{Ref: t.ref, Tar: path, ID: id}, nil
}

// tarID is the config digest of the image in a docker-archive.
func tarID(path string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return "", err
	}
	h, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// pruneOld removes the tarballs of other keys of the same image that no
// build has used for a day: another checkout (CI's clone, a branch) may still
// be using a recent one.
func pruneOld(cache, name, keep string) {
	old, _ := filepath.Glob(filepath.Join(cache, name+"-*.tar"))
	for _, p := range old {
		// "redis-7.0-<key>.tar" must not prune "redis-7.0.1-<key>.tar".
		if p == keep || strings.Contains(strings.TrimPrefix(filepath.Base(p), name+"-"), "-") {
			continue
		}
		if st, err := os.Stat(p); err == nil && time.Since(st.ModTime()) > 24*time.Hour {
			os.Remove(p)
		}
	}
}
