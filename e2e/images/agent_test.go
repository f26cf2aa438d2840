package images

import (
	"archive/tar"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestAgentImageConfig(t *testing.T) {
	img, err := agentImage([]byte("\x7fELF fake"), []byte("-----BEGIN CERTIFICATE-----\n"))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532 (numeric, so runAsNonRoot can check it)", cf.Config.User)
	}
	if diff := cmp.Diff([]string{"/usr/local/bin/redis-ha-agent"}, cf.Config.Entrypoint); diff != "" {
		t.Errorf("Entrypoint (-want +got):\n%s", diff)
	}
	if len(cf.Config.Cmd) != 0 {
		t.Errorf("Cmd = %v, want none (the manifests give the subcommand)", cf.Config.Cmd)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s, want linux/<arch>", cf.OS, cf.Architecture)
	}
	files := layerFiles(t, img)
	for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"} {
		if _, ok := files[shell]; ok {
			t.Errorf("the image has %s; it must have no shell", shell)
		}
	}
	want := map[string]struct {
		typ      byte
		mode     int64
		uid, gid int
	}{
		"usr/local/bin/redis-ha-agent":      {tar.TypeReg, 0o755, 0, 0},
		"etc/ssl/certs/ca-certificates.crt": {tar.TypeReg, 0o644, 0, 0},
		"etc/passwd":                        {tar.TypeReg, 0o644, 0, 0},
		"etc/group":                         {tar.TypeReg, 0o644, 0, 0},
		"tmp/":                              {tar.TypeDir, 0o1777, 0, 0},
		"home/nonroot/":                     {tar.TypeDir, 0o700, 65532, 65532},
	}
	for name, w := range want {
		h, ok := files[name]
		if !ok {
			t.Errorf("image has no %s", name)
			continue
		}
		if h.hdr.Typeflag != w.typ || h.hdr.Mode != w.mode || h.hdr.Uid != w.uid || h.hdr.Gid != w.gid {
			t.Errorf("%s: type %c mode %o owner %d:%d, want type %c mode %o owner %d:%d",
				name, h.hdr.Typeflag, h.hdr.Mode, h.hdr.Uid, h.hdr.Gid, w.typ, w.mode, w.uid, w.gid)
		}
	}
	if p := string(files["etc/passwd"].data); !strings.Contains(p, "nonroot:x:65532:65532:") || !strings.HasPrefix(p, "root:x:0:0:") {
		t.Errorf("etc/passwd = %q, want root and nonroot (65532)", p)
	}
	if g := string(files["etc/group"].data); !strings.Contains(g, "nonroot:x:65532:") {
		t.Errorf("etc/group = %q, want nonroot (65532)", g)
	}
}

func TestAgentTagIn(t *testing.T) {
	cases := map[string]struct {
		reason   string
		manifest string
		want     string
		wantErr  string
	}{
		"latest":       {"today's manifests", "    image: ghcr.io/redis-ha-agent/redis-ha-agent:latest\n", "latest", ""},
		"pinned":       {"a pinned tag", "image: ghcr.io/redis-ha-agent/redis-ha-agent:v0.3.1 # pinned\n", "v0.3.1", ""},
		"quoted":       {"YAML quotes", `  image: "ghcr.io/redis-ha-agent/redis-ha-agent:v1"` + "\n", "v1", ""},
		"list item":    {"a container list entry", "- image: ghcr.io/redis-ha-agent/redis-ha-agent:v2\n", "v2", ""},
		"no tag":       {"no tag means latest", "image: ghcr.io/redis-ha-agent/redis-ha-agent\n", "latest", ""},
		"others first": {"other images are skipped", "image: redis:7.0\n---\nimage: ghcr.io/redis-ha-agent/redis-ha-agent:v3\n", "v3", ""},
		"other digest": {"another image's digest is not the agent's", "image: redis@sha256:abc\nimage: ghcr.io/redis-ha-agent/redis-ha-agent:v4\n", "v4", ""},
		"digest":       {"a digest can't be built", "image: ghcr.io/redis-ha-agent/redis-ha-agent@sha256:abc\n", "", "by digest"},
		"other repo":   {"the builder would tag the wrong name", "image: docker.io/someone/redis-ha-agent:v1\n", "", "agentRepo"},
		"none":         {"nothing to read", "name: agent\n", "", "no `image:"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := agentTagIn([]byte(tc.manifest), "sidecar.yaml")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s: error %v, want one containing %q", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("%s: got %q, %v; want %q", tc.reason, got, err, tc.want)
			}
		})
	}
}

type layerFile struct {
	hdr  *tar.Header
	data []byte
}

// layerFiles reads every entry of every layer of img, keyed by path
// without "./" (directories end in "/"); contents are kept for small files.
func layerFiles(t *testing.T, img v1.Image) map[string]layerFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]layerFile{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var data []byte
			if h.Size < 1<<20 {
				if data, err = io.ReadAll(tr); err != nil {
					t.Fatal(err)
				}
			}
			files[strings.TrimPrefix(h.Name, "./")] = layerFile{hdr: h, data: data}
		}
		rc.Close()
	}
	return files
}
