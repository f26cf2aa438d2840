package images

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestExporterTagIsPinnedOnce: the manifests and the chart name the
// redis_exporter version this package builds, so the e2e runs what users
// pull.
func TestExporterTagIsPinnedOnce(t *testing.T) {
	root := filepath.Join("..", "..")
	for path, re := range map[string]*regexp.Regexp{
		"manifests/components/redis-exporter/container.yaml": regexp.MustCompile(`(?m)^\s*image:\s*(?:docker\.io/)?oliver006/redis_exporter:(\S+)\s*$`),
		// metrics.exporter.image: repository, then tag.
		"charts/redis-ha-agent/values.yaml": regexp.MustCompile(`(?m)^\s*repository:\s*(?:docker\.io/)?oliver006/redis_exporter\s*\n\s*tag:\s*"?([^"\s]+)"?\s*$`),
	} {
		b, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindAllSubmatch(b, -1)
		if len(m) != 1 {
			t.Errorf("%s: want one oliver006/redis_exporter image with a tag, found %d", path, len(m))
			continue
		}
		if got := string(m[0][1]); got != ExporterVersion {
			t.Errorf("%s names redis_exporter %s, but e2e/images builds %s (ExporterVersion in exporter.go): change both together", path, got, ExporterVersion)
		}
	}
}

func TestExporterImageConfig(t *testing.T) {
	img, err := exporterImage([]byte("\x7fELF fake"), []byte("-----BEGIN CERTIFICATE-----\n"))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "59000:59000" {
		t.Errorf("User = %q, want upstream's 59000:59000 (numeric, so runAsNonRoot can check it)", cf.Config.User)
	}
	if diff := cmp.Diff([]string{"/redis_exporter"}, cf.Config.Entrypoint); diff != "" {
		t.Errorf("Entrypoint (-want +got), upstream's, which the manifests rely on (no command):\n%s", diff)
	}
	files := layerFiles(t, img)
	for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"} {
		if _, ok := files[shell]; ok {
			t.Errorf("the image has %s; it must have no shell", shell)
		}
	}
	if h, ok := files["redis_exporter"]; !ok || h.hdr.Typeflag != tar.TypeReg || h.hdr.Mode != 0o755 || h.hdr.Uid != 0 {
		t.Errorf("redis_exporter in the image: %+v, want a root-owned 0755 file", h)
	}
}

// TestBuildExporter builds the image from the module (or finds it in the
// cache) and runs its binary: it is the pinned version.
func TestBuildExporter(t *testing.T) {
	// The shared e2e cache: a warm one holds the image already.
	var log bytes.Buffer
	imgs, err := Build(context.Background(), Options{Only: []string{"redis-exporter"}, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(imgs) != 1 || imgs[0].Ref != "docker.io/oliver006/redis_exporter:"+ExporterVersion {
		t.Fatalf("built %+v, want docker.io/oliver006/redis_exporter:%s", imgs, ExporterVersion)
	}
	dir := t.TempDir()
	if err := Extract(imgs[0], dir); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(dir, ExporterBinary), "-version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Redis Metrics Exporter "+ExporterVersion) {
		t.Errorf("redis_exporter -version: %v %s; want %s", err, out, ExporterVersion)
	}
}
