package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ReleasePlatforms are the platforms `make image` builds the agent for.
var ReleasePlatforms = []string{"linux/amd64", "linux/arm64"}

// AgentRelease builds the agent image for each platform ("linux/amd64",
// ...) with the Dockerfile's go build line (GOOS/GOARCH set; static, so
// no cross C toolchain is needed) and writes one multi-platform OCI image
// index, tagged ref, as an OCI image layout in dir (empty or absent). It
// needs no container engine or registry: `skopeo copy oci:DIR
// docker://...`, `crane push DIR ...` or `ctr images import` take it from
// there. It returns the index.
func AgentRelease(ctx context.Context, repoRoot, tag string, platforms []string, dir string, log io.Writer) (v1.ImageIndex, error) {
	if tag == "" {
		var err error
		if tag, err = manifestAgentTag(repoRoot); err != nil {
			return nil, err
		}
	}
	ca, err := os.ReadFile(hostCABundle)
	if err != nil {
		return nil, caMissing(err)
	}
	work, err := os.MkdirTemp("", "redis-ha-agent-release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	bins := map[string][]byte{}
	for _, p := range platforms {
		arch, err := linuxArch(p)
		if err != nil {
			return nil, err
		}
		if bins[arch], err = buildAgent(ctx, repoRoot, tag, filepath.Join(work, "redis-ha-agent-"+arch), "agent "+p, []string{"GOOS=linux", "GOARCH=" + arch}, log); err != nil {
			return nil, err
		}
	}
	idx, err := agentIndex(bins, ca)
	if err != nil {
		return nil, err
	}
	if err := writeLayout(dir, idx, tag); err != nil {
		return nil, err
	}
	return idx, nil
}

func linuxArch(platform string) (string, error) {
	arch, ok := strings.CutPrefix(platform, "linux/")
	if !ok || arch == "" || strings.Contains(arch, "/") {
		return "", fmt.Errorf("platform %q: want linux/<arch>, e.g. linux/amd64 or linux/arm64", platform)
	}
	return arch, nil
}

// agentIndex is one OCI image per architecture (the e2e agent image's
// files and config, with that architecture) in an OCI image index whose
// manifests carry their platform.
func agentIndex(bins map[string][]byte, ca []byte) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	archs := make([]string, 0, len(bins))
	for a := range bins {
		archs = append(archs, a)
	}
	slices.Sort(archs)
	for _, arch := range archs {
		img, err := agentImage(bins[arch], ca)
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		cf = cf.DeepCopy()
		cf.Architecture = arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return nil, err
		}
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				MediaType: types.OCIManifestSchema1,
				Platform:  &v1.Platform{OS: "linux", Architecture: arch},
			},
		})
	}
	return idx, nil
}

// writeLayout writes the OCI image layout dir holding idx, named tag
// (index.json's one entry, annotated org.opencontainers.image.ref.name, as
// `skopeo copy --all oci:DIR:TAG` reads it). dir must be empty or absent:
// an existing layout is never overwritten in part.
func writeLayout(dir string, idx v1.ImageIndex, tag string) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s is not empty: remove it or choose another directory for the OCI layout", dir)
	}
	p, err := layout.Write(dir, empty.Index)
	if err == nil {
		err = p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameAnnotation: tag}))
	}
	if err != nil {
		return fmt.Errorf("write the OCI layout to %s: %w", dir, err)
	}
	return nil
}

const refNameAnnotation = "org.opencontainers.image.ref.name"
