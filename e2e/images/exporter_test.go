package images

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
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
