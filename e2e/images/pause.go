package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const (
	pauseRef = "registry.k8s.io/pause:3.10"
	// The pause.c of this Kubernetes release is compiled; its
	// build/pause/Makefile stamps v$(TAG)-$(REV).
	pauseK8sVersion = "v1.34.4"
	pauseVersion    = "v3.10-" + pauseK8sVersion
	pauseUser       = "65535:65535"
)

// pauseCFlags are upstream's CFLAGS (build/pause/Makefile) with this
// build's VERSION.
func pauseCFlags() []string {
	return []string{"-Os", "-Wall", "-Werror", "-static", "-DVERSION=" + pauseVersion}
}

func pauseTarget() target {
	return target{
		name: "pause",
		ref:  pauseRef,
		what: "gcc -static k8s.io/kubernetes@" + pauseK8sVersion + "/build/pause/linux/pause.c",
		key: func(ctx context.Context) (string, error) {
			src, err := pauseSource(ctx)
			if err != nil {
				return "", err
			}
			srcHash, err := hashFile(src)
			if err != nil {
				return "", err
			}
			cc, err := gccIdentity(ctx)
			if err != nil {
				return "", err
			}
			return pauseKey(srcHash, cc), nil
		},
		build: func(ctx context.Context, work string, log io.Writer) (v1.Image, error) {
			src, err := pauseSource(ctx)
			if err != nil {
				return nil, err
			}
			bin := filepath.Join(work, "pause")
			args := append(pauseCFlags(), "-o", bin, src)
			fmt.Fprintf(log, "  pause: gcc %s\n", strings.Join(args, " "))
			if out, err := exec.CommandContext(ctx, "gcc", args...).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("gcc %s: %w\n%s\n(a static build needs libc6-dev; run e2e/hack/install-image-deps.sh)", strings.Join(args, " "), err, out)
			}
			b, err := os.ReadFile(bin)
			if err != nil {
				return nil, err
			}
			return pauseImage(b)
		},
	}
}

// pauseKey hashes the pause image's inputs: pause.c, the flags, and the
// compiler and static libc that go into the binary.
func pauseKey(sourceHash string, gcc []string) string {
	k := newKey("pause")
	k.add("source", sourceHash)
	k.add("cflags", pauseCFlags()...)
	k.add("gcc", gcc...)
	return k.String()
}

// pauseImage is upstream's: FROM scratch, /pause, USER 65535:65535.
func pauseImage(binary []byte) (v1.Image, error) {
	layer, err := layerOf([]file{regular("pause", 0o755, binary)})
	if err != nil {
		return nil, err
	}
	return imageOf(layer, v1.Config{
		User:       pauseUser,
		Entrypoint: []string{"/pause"},
		Env:        []string{"PATH=" + defaultPath},
	})
}

// pauseSource finds pause.c in the module cache, downloading
// k8s.io/kubernetes into it if e2e/hack/build-k8s.sh hasn't already.
func pauseSource(ctx context.Context) (string, error) {
	modcache, err := exec.CommandContext(ctx, "go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("`go env GOMODCACHE`: %w", err)
	}
	src := filepath.Join(strings.TrimSpace(string(modcache)), "k8s.io", "kubernetes@"+pauseK8sVersion, "build", "pause", "linux", "pause.c")
	if _, err := os.Stat(src); err == nil {
		return src, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	// `go mod download` needs a module to run in; an empty one will do.
	tmp, err := os.MkdirTemp("", "pause-src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte("module pausesrc\n"), 0o644); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "k8s.io/kubernetes@"+pauseK8sVersion)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("pause.c is not in the module cache and `go mod download k8s.io/kubernetes@%s` failed (is the Go module proxy reachable?): %w\n%s", pauseK8sVersion, err, out)
	}
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("after `go mod download k8s.io/kubernetes@%s`: %w", pauseK8sVersion, err)
	}
	return src, nil
}

// gccIdentity names the compiler and the static libc it links, which both
// end up in the binary.
func gccIdentity(ctx context.Context) ([]string, error) {
	if _, err := exec.LookPath("gcc"); err != nil {
		return nil, fmt.Errorf("the pause image is compiled with gcc, which is not on PATH: run e2e/hack/install-image-deps.sh (apt-get install gcc libc6-dev)")
	}
	ver, err := exec.CommandContext(ctx, "gcc", "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("gcc --version: %w", err)
	}
	libc, err := exec.CommandContext(ctx, "gcc", "-print-file-name=libc.a").Output()
	if err != nil {
		return nil, fmt.Errorf("gcc -print-file-name=libc.a: %w", err)
	}
	libcHash, err := hashFile(strings.TrimSpace(string(libc)))
	if err != nil {
		return nil, fmt.Errorf("the static pause binary links libc.a, which gcc can't find (%w): run e2e/hack/install-image-deps.sh (apt-get install libc6-dev)", err)
	}
	first, _, _ := strings.Cut(string(ver), "\n")
	return []string{first, libcHash}, nil
}
