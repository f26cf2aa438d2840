package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The redis_exporter of manifests/components/redis-exporter, built from its
// Go module at ExporterVersion. This constant is the one pin: the
// component's and the chart's image tags are checked against it
// (exporter_test.go), and e2e/monitoring runs the binary of this image.
const (
	ExporterVersion = "v1.97.0"
	exporterModule  = "github.com/oliver006/redis_exporter"
	exporterRepo    = "docker.io/oliver006/redis_exporter"
	exporterRef     = exporterRepo + ":" + ExporterVersion
	// ExporterBinary is where upstream's image has it (its entrypoint),
	// so the manifests set no command and run either image.
	ExporterBinary = "/redis_exporter"
	// Upstream's image user; the manifests run it as the pod's user.
	exporterUser = "59000:59000"
)

// exporterGoInstall is upstream's release build (its Dockerfile: static,
// -s -w, the version stamped into main.BuildVersion) as a go install of
// the module at the pinned version, into gobin.
func exporterGoInstall(gobin string) (env, args []string) {
	return []string{"CGO_ENABLED=0", "GOBIN=" + gobin, "GOFLAGS="},
		[]string{"go", "install", "-trimpath", "-ldflags", "-s -w -X main.BuildVersion=" + ExporterVersion + " -X main.BuildCommitSha=go-module -X main.BuildDate=go-module", exporterModule + "@" + ExporterVersion}
}

func exporterTarget() target {
	return target{
		name: "redis-exporter",
		ref:  exporterRef,
		what: "go install " + exporterModule + "@" + ExporterVersion + ", static, on a distroless-like base",
		key: func(ctx context.Context) (string, error) {
			gover, err := goVersion(ctx, os.TempDir())
			if err != nil {
				return "", err
			}
			ca, err := hashFile(hostCABundle)
			if err != nil {
				return "", caMissing(err)
			}
			_, args := exporterGoInstall("")
			k := newKey("redis-exporter")
			k.add("build", args...)
			k.add("go", gover, runtime.GOARCH)
			k.add("ca", ca)
			return k.String(), nil
		},
		build: func(ctx context.Context, work string, log io.Writer) (v1.Image, error) {
			bin, err := buildExporter(ctx, work, log)
			if err != nil {
				return nil, err
			}
			ca, err := os.ReadFile(hostCABundle)
			if err != nil {
				return nil, caMissing(err)
			}
			return exporterImage(bin, ca)
		},
	}
}

// exporterImage is the binary where upstream's image has it, with
// upstream's user and entrypoint, on the agent's distroless-like base (no
// shell).
func exporterImage(binary, caBundle []byte) (v1.Image, error) {
	layer, err := layerOf(append(nonrootBase(caBundle),
		regular(strings.TrimPrefix(ExporterBinary, "/"), 0o755, binary)))
	if err != nil {
		return nil, err
	}
	return imageOf(layer, v1.Config{
		User:         exporterUser,
		Entrypoint:   []string{ExporterBinary},
		Env:          []string{"PATH=" + defaultPath, "SSL_CERT_FILE=/" + imageCABundle},
		ExposedPorts: map[string]struct{}{"9121/tcp": {}},
	})
}

// buildExporter runs exporterGoInstall into work and returns the binary.
// The module comes from the module proxy (or the module cache).
func buildExporter(ctx context.Context, work string, log io.Writer) ([]byte, error) {
	gobin := filepath.Join(work, "bin")
	env, args := exporterGoInstall(gobin)
	fmt.Fprintf(log, "  redis-exporter: %s %s\n", strings.Join(env, " "), shellJoin(args))
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = work // outside any module: go install module@version
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s\n(the Go toolchain on PATH and the module proxy, or a module cache holding %s@%s, are needed)", strings.Join(env, " "), shellJoin(args), err, b, exporterModule, ExporterVersion)
	}
	return os.ReadFile(filepath.Join(gobin, "redis_exporter"))
}
