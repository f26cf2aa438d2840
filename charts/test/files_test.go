package charttest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The chart reads these files with .Files.Get, and a chart cannot reach
// outside its directory: each is a copy of the kustomize file it stands
// for, kept byte-equal here so there is one text to edit. (The comparison
// with the overlays would catch a drift too, but only as a diff of
// rendered objects.)
func TestChartFilesAreCopies(t *testing.T) {
	copies := map[string]string{
		"files/sentinel/redis.conf":            "base/sentinel/redis.conf",
		"files/cluster/redis.conf":             "base/cluster/redis.conf",
		"files/monitoring/dashboard.json":      "components/monitoring/dashboard.json",
		"files/monitoring/podmonitor.yaml":     "components/monitoring/podmonitor.yaml",
		"files/monitoring/prometheusrule.yaml": "components/monitoring/prometheusrule.yaml",
	}
	for copyPath, origPath := range copies {
		t.Run(copyPath, func(t *testing.T) {
			orig := filepath.Join(manifestsDir, origPath)
			cp := filepath.Join(chartDir, copyPath)
			want, err := os.ReadFile(orig)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(cp)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatalf("%s is empty", orig)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("charts/redis-ha-agent/%s differs from manifests/%s: edit the manifests' file and copy it (cp manifests/%s charts/redis-ha-agent/%s)", copyPath, origPath, origPath, copyPath)
			}
		})
	}
}
