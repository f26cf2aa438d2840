package images

import (
	"context"
	"strings"
	"testing"
)

// A missing tool must fail with what is missing and how to get it, never
// skip.
func TestMissingToolsSayHowToGetThem(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	ctx := context.Background()
	if _, err := mmdebstrapVersion(ctx); err == nil || !strings.Contains(err.Error(), "mmdebstrap") || !strings.Contains(err.Error(), "install-image-deps.sh") {
		t.Errorf("no mmdebstrap: error %v, want it to name mmdebstrap and install-image-deps.sh", err)
	}
	if _, err := gccIdentity(ctx); err == nil || !strings.Contains(err.Error(), "gcc") || !strings.Contains(err.Error(), "install-image-deps.sh") {
		t.Errorf("no gcc: error %v, want it to name gcc and install-image-deps.sh", err)
	}
	_, err := Build(ctx, Options{CacheDir: t.TempDir(), Only: []string{"redis-7.0"}})
	if err == nil || !strings.Contains(err.Error(), "redis-7.0") || !strings.Contains(err.Error(), "install-image-deps.sh") {
		t.Errorf("Build without mmdebstrap: %v, want an error naming the image and install-image-deps.sh", err)
	}
}
