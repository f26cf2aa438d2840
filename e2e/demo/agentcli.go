package demo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildAgentCLI builds the redis-ha-agent binary of this checkout for this
// machine, into <stateDir>/bin, with `make build`'s flags: the demo runs its
// `status` command from outside the cluster, as a user would. Building it
// every time keeps it in step with the image the pods run, which was built
// from the same checkout; Go's build cache makes it a link step then.
func buildAgentCLI(ctx context.Context, root, stateDir string) (string, error) {
	out := filepath.Join(stateDir, "bin", "redis-ha-agent")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/redis-ha-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/redis-ha-agent in %s (the CLI whose status command the demo shows): %w: %s", root, err, strings.TrimSpace(string(b)))
	}
	return out, nil
}
