package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestBuildAgentAndPause really builds the two fast images into a fresh
// cache, checks what `ctr images import` and the kubelet will see, then
// builds again and expects the cache to answer.
func TestBuildAgentAndPause(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	const tag = "v0.0.0-images-test"
	opts := Options{CacheDir: cache, RepoRoot: repoRoot(t), AgentTag: tag, Only: []string{"pause", "agent"}}
	var log bytes.Buffer
	opts.Log = io.MultiWriter(&log, testLog(t))
	imgs, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, img := range imgs {
		refs = append(refs, img.Ref)
	}
	if diff := cmp.Diff([]string{"ghcr.io/redis-ha-agent/redis-ha-agent:" + tag, "registry.k8s.io/pause:3.10"}, refs); diff != "" {
		t.Fatalf("refs, in Names order (-want +got):\n%s", diff)
	}
	for _, img := range imgs {
		checkArchive(t, img)
	}

	agent := openImage(t, imgs[0])
	cf := configOf(t, agent)
	if cf.Config.User != agentUser || !cmp.Equal(cf.Config.Entrypoint, []string{agentBinary}) {
		t.Errorf("agent config: User %q Entrypoint %v, want %q [%s]", cf.Config.User, cf.Config.Entrypoint, agentUser, agentBinary)
	}
	files := layerFiles(t, agent)
	bin := extract(t, files, "usr/local/bin/redis-ha-agent", imgs[0].Tar)
	checkStatic(t, bin)
	if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil || !strings.Contains(string(out), tag) {
		t.Errorf("the image's binary: `redis-ha-agent version` = %q (%v), want it to carry the tag %s", out, err, tag)
	}
	for name := range files {
		if strings.HasSuffix(name, "/sh") || strings.HasSuffix(name, "/busybox") {
			t.Errorf("agent image has %s; it must have no shell", name)
		}
	}

	pause := openImage(t, imgs[1])
	cf = configOf(t, pause)
	if cf.Config.User != pauseUser || !cmp.Equal(cf.Config.Entrypoint, []string{"/pause"}) {
		t.Errorf("pause config: User %q Entrypoint %v, want %q [/pause]", cf.Config.User, cf.Config.Entrypoint, pauseUser)
	}
	files = layerFiles(t, pause)
	if len(files) != 1 {
		t.Errorf("pause image has %d files, want only /pause: %v", len(files), keys(files))
	}
	bin = extract(t, files, "pause", imgs[1].Tar)
	checkStatic(t, bin)
	if out, err := exec.Command(bin, "-v").CombinedOutput(); err != nil || !strings.Contains(string(out), pauseVersion) {
		t.Errorf("`pause -v` = %q (%v), want the version %s", out, err, pauseVersion)
	}
	if !strings.Contains(log.String(), "building agent") || !strings.Contains(log.String(), "building pause") {
		t.Errorf("first build's log has no `building` lines:\n%s", log.String())
	}

	log.Reset()
	again, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(imgs, again); diff != "" {
		t.Errorf("second build differs from the first (-first +second):\n%s", diff)
	}
	if strings.Contains(log.String(), "building") || strings.Count(log.String(), "cached ") != 2 {
		t.Errorf("second build with nothing changed should only read the cache; its log:\n%s", log.String())
	}
}

// TestConcurrentBuilds: two builds of the same image into one cache (two
// test binaries at once) build it once; the other waits and reads it.
func TestConcurrentBuilds(t *testing.T) {
	cache := t.TempDir()
	var wg sync.WaitGroup
	logs := make([]bytes.Buffer, 2)
	got := make([][]Image, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			got[i], errs[i] = Build(context.Background(), Options{CacheDir: cache, Only: []string{"pause"}, Log: &logs[i]})
		})
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("build %d: %v", i, errs[i])
		}
	}
	if diff := cmp.Diff(got[0], got[1]); diff != "" {
		t.Errorf("the two builds returned different images (-first +second):\n%s", diff)
	}
	all := logs[0].String() + logs[1].String()
	if n := strings.Count(all, "building pause"); n != 1 {
		t.Errorf("pause built %d times, want once; logs:\n%s", n, all)
	}
	checkArchive(t, got[0][0])
	if tmp, _ := filepath.Glob(filepath.Join(cache, ".*")); len(tmp) != 0 {
		t.Errorf("temp files left in the cache: %v", tmp)
	}
}

func TestUnknownName(t *testing.T) {
	_, err := Build(context.Background(), Options{CacheDir: t.TempDir(), Only: []string{"redis-6.2"}})
	if err == nil || !strings.Contains(err.Error(), "redis-7.0") {
		t.Errorf("Build(Only: redis-6.2) = %v, want an error listing the names it knows", err)
	}
}

// checkArchive checks the tarball the way `ctr images import` reads it: a
// docker-archive whose one manifest is tagged with the image's Ref, and
// whose config digest is the reported ID.
func checkArchive(t *testing.T, img Image) {
	t.Helper()
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(img.Tar) })
	if err != nil {
		t.Fatalf("%s: %v", img.Tar, err)
	}
	if len(m) != 1 || !cmp.Equal(m[0].RepoTags, []string{img.Ref}) {
		t.Errorf("%s: manifest.json %+v, want one image tagged [%s]", img.Tar, m, img.Ref)
	}
	id, err := openImage(t, img).ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != img.ID {
		t.Errorf("%s: config digest %s, Image.ID %s", img.Ref, id, img.ID)
	}
}

func openImage(t *testing.T, img Image) v1.Image {
	t.Helper()
	i, err := tarball.ImageFromPath(img.Tar, nil)
	if err != nil {
		t.Fatalf("%s: %v", img.Tar, err)
	}
	return i
}

func configOf(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// extract writes one file of an image to a temp dir, executable.
func extract(t *testing.T, files map[string]layerFile, name, from string) string {
	t.Helper()
	f, ok := files[name]
	if !ok {
		t.Fatalf("%s has no %s; it has %v", from, name, keys(files))
	}
	if f.hdr.Mode&0o111 == 0 {
		t.Errorf("%s: mode %o, not executable", name, f.hdr.Mode)
	}
	data := f.data
	if data == nil { // layerFiles keeps only small files
		data = readLarge(t, from, name)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (has PT_INTERP); the image has no libc", filepath.Base(path))
		}
	}
}

func keys(m map[string]layerFile) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// testLog passes progress lines to t.Log, which `go test -v` shows as they
// come (a cold Debian build takes minutes).
func testLog(t *testing.T) io.Writer {
	return &tailWriter{log: logWriter{t}, keep: 0}
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// readLarge reads one file, of any size, from the image in a tarball.
func readLarge(t *testing.T, tarPath, name string) []byte {
	t.Helper()
	img, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if strings.TrimPrefix(h.Name, "./") == name {
				b, err := io.ReadAll(tr)
				rc.Close()
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
		rc.Close()
	}
	t.Fatalf("%s: no %s", tarPath, name)
	return nil
}
