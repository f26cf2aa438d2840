// Command images builds the e2e cluster's container images without a
// registry or a container engine: `go run ./cmd/images build` (from e2e/)
// prints one `REF TARPATH` line per image on stdout, for
// `ctr -n k8s.io images import TARPATH`, and its progress on stderr.
// See e2e/images/README.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/images"
)

const rootModule = "github.com/redis-ha-agent/redis-ha-agent"

type cli struct {
	Build  buildCmd  `cmd:"" help:"Build the images (or find them cached) and print REF TARPATH for each."`
	Agent  agentCmd  `cmd:"" help:"Build the release agent image for several platforms as one OCI image layout in OUT (make image), and print OUT."`
	Rootfs rootfsCmd `cmd:"" help:"Unpack the Redis and Valkey images' root filesystems into DIR/<engine>-<version>/ (for the unit tests that run an engine the host lacks through chroot: REDIS_HA_ENGINE_ROOTS=DIR) and print DIR."`
}

type rootfsCmd struct {
	buildCmd
	Dir string `arg:"" help:"Directory to unpack into (one subdirectory per engine)."`
}

func (r *rootfsCmd) Run(ctx context.Context, s *streams) error {
	if len(r.Only) == 0 {
		r.Only = []string{"redis-7.0", "valkey-8.0", "redis-8.0", "valkey-8.1"}
	}
	imgs, err := r.build(ctx, s.stderr)
	if err != nil {
		return err
	}
	for _, img := range imgs {
		dir := filepath.Join(r.Dir, images.EngineName(img.Ref))
		if err := images.Extract(img, dir); err != nil {
			return err
		}
		fmt.Fprintf(s.stderr, "root filesystem of %s in %s\n", img.Ref, dir)
	}
	fmt.Fprintln(s.stdout, r.Dir)
	return nil
}

type agentCmd struct {
	Out       string   `required:"" help:"Directory of the OCI image layout (must be empty or absent)."`
	Platforms []string `default:"${platforms}" sep:"," help:"Platforms to build for."`
	RepoRoot  string   `env:"REDIS_HA_REPO_ROOT" help:"Repository root (default: found above the working directory)."`
	AgentTag  string   `env:"REDIS_HA_AGENT_TAG" help:"Tag of the image and version stamped into the binary (default: the one the manifests name)."`
}

func (a *agentCmd) Run(ctx context.Context, s *streams) error {
	root := a.RepoRoot
	if root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		if root, err = findRepoRoot(wd); err != nil {
			return err
		}
	}
	idx, err := images.AgentRelease(ctx, root, a.AgentTag, a.Platforms, a.Out, s.stderr)
	if err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(s.stderr, "OCI image index %s for %s in %s\n", d, strings.Join(a.Platforms, ", "), a.Out)
	fmt.Fprintln(s.stdout, a.Out)
	return nil
}

type buildCmd struct {
	Cache    string   `env:"REDIS_HA_E2E_IMAGE_CACHE" help:"Directory of the image tarballs (default: images/ under $REDIS_HA_E2E_CACHE or ~/.cache/redis-ha-agent-e2e)."`
	Only     []string `help:"Build only these, by short name: ${names}." sep:","`
	RepoRoot string   `env:"REDIS_HA_REPO_ROOT" help:"Repository root (default: found above the working directory)."`
	AgentTag string   `env:"REDIS_HA_AGENT_TAG" help:"Tag of the agent image (default: the one the manifests name)."`
}

// streams is what the commands print to: results on stdout, progress on
// stderr.
type streams struct{ stdout, stderr io.Writer }

func (b *buildCmd) Run(ctx context.Context, s *streams) error {
	stdout, stderr := s.stdout, s.stderr
	imgs, err := b.build(ctx, stderr)
	for _, img := range imgs {
		fmt.Fprintf(stdout, "%s %s\n", img.Ref, img.Tar)
	}
	if err != nil {
		return err
	}
	aliases := images.Aliases()
	names := make([]string, 0, len(aliases))
	for a := range aliases {
		names = append(names, a)
	}
	sort.Strings(names)
	fmt.Fprintln(stderr, "stand-ins for images that can't be built here (tag them under the name the manifest uses):")
	for _, a := range names {
		fmt.Fprintf(stderr, "  %s -> %s\n", a, aliases[a])
	}
	return nil
}

// build builds (or finds cached) the selected images.
func (b *buildCmd) build(ctx context.Context, log io.Writer) ([]images.Image, error) {
	root := b.RepoRoot
	if root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if root, err = findRepoRoot(wd); err != nil {
			return nil, err
		}
	}
	return images.Build(ctx, images.Options{
		CacheDir: b.Cache, RepoRoot: root, AgentTag: b.AgentTag, Only: b.Only, Log: log,
	})
}

// findRepoRoot walks up from dir to the directory whose go.mod is the
// agent's module.
func findRepoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if f, err := os.Open(filepath.Join(d, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			first := sc.Scan() && strings.TrimSpace(sc.Text()) == "module "+rootModule
			f.Close()
			if first {
				return d, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no repository root (a go.mod of module " + rootModule + ") above " + dir + ": run from inside the repository or pass --repo-root")
		}
	}
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var c cli
	parser, err := kong.New(&c, kong.Name("images"),
		kong.Description("Build the e2e container images as docker-archive tarballs, without a registry or Docker."),
		kong.Vars{"names": strings.Join(images.Names(), ", "), "platforms": strings.Join(images.ReleasePlatforms, ",")},
		kong.UsageOnError(), kong.BindTo(ctx, (*context.Context)(nil)))
	if err != nil {
		return err
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		return err
	}
	return kctx.Run(ctx, &streams{stdout: stdout, stderr: stderr})
}
