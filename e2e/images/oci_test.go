package images

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestAgentReleaseLayout: the OCI layout `make image` writes, read back as
// a registry client would: index.json names one multi-platform index by
// its tag; the index lists one OCI image per release platform, each with
// the Dockerfile's entrypoint and user, its own architecture in its config
// and the binary built for it at the Dockerfile's path.
func TestAgentReleaseLayout(t *testing.T) {
	df := readDockerfile(t, "../../Dockerfile")
	bins := map[string][]byte{"amd64": []byte("\x7fELF amd64 build"), "arm64": []byte("\x7fELF arm64 build")}
	idx, err := agentIndex(bins, []byte("-----BEGIN CERTIFICATE-----\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "image")
	if err := writeLayout(dir, idx, "v9.9.9"); err != nil {
		t.Fatal(err)
	}
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].MediaType != types.OCIImageIndex || tm.Manifests[0].Annotations[refNameAnnotation] != "v9.9.9" {
		t.Fatalf("index.json = %+v, want one OCI image index named v9.9.9", tm.Manifests)
	}
	multi, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := multi.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		p := d.Platform.OS + "/" + d.Platform.Architecture
		platforms = append(platforms, p)
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("%s: media type %s, want %s", p, d.MediaType, types.OCIManifestSchema1)
		}
		img, err := multi.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS+"/"+cf.Architecture != p {
			t.Errorf("%s: config says %s/%s", p, cf.OS, cf.Architecture)
		}
		if diff := cmp.Diff(df.entrypoint, cf.Config.Entrypoint); diff != "" {
			t.Errorf("%s: entrypoint differs from the Dockerfile's (-Dockerfile +image):\n%s", p, diff)
		}
		if cf.Config.User != df.user {
			t.Errorf("%s: user %q, the Dockerfile's USER is %q", p, cf.Config.User, df.user)
		}
		got := layerFiles(t, img)[strings.TrimPrefix(df.binary, "/")].data
		if want := bins[d.Platform.Architecture]; string(got) != string(want) {
			t.Errorf("%s: %s holds %q, want the %s build %q", p, df.binary, got, d.Platform.Architecture, want)
		}
	}
	if diff := cmp.Diff(ReleasePlatforms, platforms); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}

	// A second write into the same directory is refused, not merged.
	if err := writeLayout(dir, idx, "v9.9.9"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("writing into the existing layout: err %v, want a refusal naming the non-empty directory", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Errorf("the first layout is damaged: %v", err)
	}
}

func TestLinuxArch(t *testing.T) {
	for in, want := range map[string]string{"linux/amd64": "amd64", "linux/arm64": "arm64", "darwin/arm64": "", "linux/": "", "amd64": "", "linux/arm/v7": ""} {
		got, err := linuxArch(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("linuxArch(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
