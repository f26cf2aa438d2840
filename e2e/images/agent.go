package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// What the agent image is, kept in step with ../../Dockerfile (the test
// dockerfile_test.go checks that they agree).
const (
	agentRepo      = "ghcr.io/redis-ha-agent/redis-ha-agent"
	agentBinary    = "/usr/local/bin/redis-ha-agent"
	agentUser      = "65532:65532"
	agentPackage   = "./cmd/redis-ha-agent"
	agentManifest  = "manifests/components/agent-sidecar/sidecar-container.yaml"
	hostCABundle   = "/etc/ssl/certs/ca-certificates.crt"
	imageCABundle  = "etc/ssl/certs/ca-certificates.crt"
	defaultPath    = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	nonrootUID     = 65532
	nonrootHomeDir = "home/nonroot"
)

// agentGoBuild is the Dockerfile's build command: static (no cgo, so it runs
// without a libc), -trimpath for a reproducible binary, the version stamped
// into main.Version.
func agentGoBuild(version, out string) (env []string, args []string) {
	return []string{"CGO_ENABLED=0"},
		[]string{"go", "build", "-trimpath", "-ldflags", "-s -w -X main.Version=" + version, "-o", out, agentPackage}
}

func agentTarget(repoRoot, tag string) (target, error) {
	if repoRoot == "" {
		return target{}, fmt.Errorf("Options.RepoRoot is empty: the agent image is built from the repository root's %s", agentPackage)
	}
	if tag == "" {
		var err error
		if tag, err = manifestAgentTag(repoRoot); err != nil {
			return target{}, err
		}
	}
	ref := agentRepo + ":" + tag
	return target{
		name: "agent",
		ref:  ref,
		what: "go build " + agentPackage + ", static, on a distroless-like nonroot base",
		key: func(ctx context.Context) (string, error) {
			src, err := hashSourceTree(repoRoot)
			if err != nil {
				return "", err
			}
			gover, err := goVersion(ctx, repoRoot)
			if err != nil {
				return "", err
			}
			ca, err := hashFile(hostCABundle)
			if err != nil {
				return "", caMissing(err)
			}
			return agentKey(tag, src, gover, runtime.GOARCH, ca), nil
		},
		build: func(ctx context.Context, work string, log io.Writer) (v1.Image, error) {
			b, err := buildAgent(ctx, repoRoot, tag, filepath.Join(work, "redis-ha-agent"), "agent", nil, log)
			if err != nil {
				return nil, err
			}
			ca, err := os.ReadFile(hostCABundle)
			if err != nil {
				return nil, caMissing(err)
			}
			return agentImage(b, ca)
		},
	}, nil
}

// buildAgent runs agentGoBuild in repoRoot with extraEnv (GOOS/GOARCH for a
// release) and returns the binary written to out; what names it in the
// progress line on log.
func buildAgent(ctx context.Context, repoRoot, tag, out, what string, extraEnv []string, log io.Writer) ([]byte, error) {
	env, args := agentGoBuild(tag, out)
	env = append(env, extraEnv...)
	fmt.Fprintf(log, "  %s: %s %s\n", what, strings.Join(env, " "), shellJoin(args))
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s %s in %s: %w\n%s", strings.Join(env, " "), shellJoin(args), repoRoot, err, b)
	}
	return os.ReadFile(out)
}

// agentKey hashes the agent image's inputs: its tag (stamped into the
// binary), the hash of the root module's sources, the Go toolchain and
// architecture, and the hash of the CA bundle copied in.
func agentKey(tag, sourceHash, goVersion, goarch, caHash string) string {
	k := newKey("agent")
	k.add("tag", tag)
	k.add("source", sourceHash)
	k.add("go", goVersion, goarch)
	k.add("ca", caHash)
	return k.String()
}

// agentImage is the agent binary on a minimal nonroot base like
// gcr.io/distroless/static:nonroot: users root, nobody and nonroot, /tmp,
// CA certificates, and no shell or any other program.
func agentImage(binary, caBundle []byte) (v1.Image, error) {
	layer, err := layerOf(append(nonrootBase(caBundle),
		dir("usr/local/", 0o755, 0, 0),
		dir("usr/local/bin/", 0o755, 0, 0),
		regular(strings.TrimPrefix(agentBinary, "/"), 0o755, binary),
	))
	if err != nil {
		return nil, err
	}
	return imageOf(layer, v1.Config{
		User:       agentUser,
		Entrypoint: []string{agentBinary},
		Env:        []string{"PATH=" + defaultPath, "SSL_CERT_FILE=/" + imageCABundle},
		WorkingDir: "/" + nonrootHomeDir,
	})
}

// nonrootBase is the file system of distroless/static:nonroot, less its
// tzdata and licences.
func nonrootBase(caBundle []byte) []file {
	return []file{
		dir("etc/", 0o755, 0, 0),
		regular("etc/passwd", 0o644, []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n"+
				"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"+
				"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")),
		regular("etc/group", 0o644, []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")),
		dir("etc/ssl/", 0o755, 0, 0),
		dir("etc/ssl/certs/", 0o755, 0, 0),
		regular(imageCABundle, 0o644, caBundle),
		dir("home/", 0o755, 0, 0),
		dir(nonrootHomeDir+"/", 0o700, nonrootUID, nonrootUID),
		dir("root/", 0o700, 0, 0),
		dir("tmp/", 0o1777, 0, 0),
		dir("usr/", 0o755, 0, 0),
	}
}

// manifestAgentTag is the tag of the agent image the manifests name, so
// that whatever they pin is what gets built.
func manifestAgentTag(repoRoot string) (string, error) {
	path := filepath.Join(repoRoot, agentManifest)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the agent image tag: %w (set Options.AgentTag, or RepoRoot to the repository root)", err)
	}
	return agentTagIn(b, path)
}

var imageLine = regexp.MustCompile(`(?m)^\s*(?:-\s*)?image:\s*["']?([^"'\s#]+)`)

func agentTagIn(manifest []byte, path string) (string, error) {
	for _, m := range imageLine.FindAllSubmatch(manifest, -1) {
		ref := string(m[1])
		repo, digest, byDigest := strings.Cut(ref, "@")
		tag := "latest"
		if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
			repo, tag = repo[:i], repo[i+1:]
		}
		if !strings.HasSuffix(repo, "/redis-ha-agent") && repo != "redis-ha-agent" {
			continue
		}
		if byDigest {
			return "", fmt.Errorf("%s names the agent image by digest (%s): a local build can't have digest %s; name it by tag", path, ref, digest)
		}
		if repo != agentRepo {
			return "", fmt.Errorf("%s names the agent image %s, but the builder tags %s:<tag>; change agentRepo in e2e/images/agent.go to match", path, ref, agentRepo)
		}
		return tag, nil
	}
	return "", fmt.Errorf("%s: no `image: %s:<tag>` line to take the agent's tag from; set Options.AgentTag", path, agentRepo)
}

func goVersion(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOVERSION")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("`go env GOVERSION` in %s: %w (the agent image is built with the go on PATH)", dir, err)
	}
	return string(bytes.TrimSpace(out)), nil
}

func hashFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

func caMissing(err error) error {
	return fmt.Errorf("the agent image copies the host's CA bundle: %w; run e2e/hack/install-image-deps.sh (installs ca-certificates)", err)
}

// shellJoin renders argv as a shell would need it typed, for logs.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if a == "" || strings.ContainsAny(a, " \t\"'$\\") {
			q[i] = strconv.Quote(a)
		}
	}
	return strings.Join(q, " ")
}
