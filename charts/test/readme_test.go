package charttest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// README's quick start installs a release by its tag: the kustomize URL's
// ?ref= and the checkout's --branch must be the chart's appVersion (which
// TestAppVersionIsTheAgentTag ties to the agent image the manifests name,
// and the release workflow to the tag), and the paths must exist, so a
// version bump or a moved overlay cannot leave the first commands broken.
func TestQuickStartNamesTheRelease(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no section ## Quick start")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load the chart %s: %v", chartDir, err)
	}
	tag := chrt.Metadata.AppVersion

	kustomizeURL := regexp.MustCompile(`apply -k 'https://github\.com/redis-ha-agent/redis-ha-agent//([^?']+)\?ref=([^']+)'`).FindStringSubmatch(section)
	if kustomizeURL == nil {
		t.Fatal("the quick start has no `kubectl apply -k 'https://github.com/redis-ha-agent/redis-ha-agent//PATH?ref=TAG'`")
	}
	if got := kustomizeURL[2]; got != tag {
		t.Errorf("the kustomize URL's ref is %s, the chart's appVersion %s: name the release's tag", got, tag)
	}
	if _, err := os.Stat(filepath.Join("../..", kustomizeURL[1], "kustomization.yaml")); err != nil {
		t.Errorf("the kustomize URL's path %s is no kustomization in this repository: %v", kustomizeURL[1], err)
	}

	clone := regexp.MustCompile(`git clone --branch (\S+) https://github\.com/redis-ha-agent/redis-ha-agent\n`).FindStringSubmatch(section)
	if clone == nil {
		t.Fatal("the quick start has no `git clone --branch TAG https://github.com/redis-ha-agent/redis-ha-agent`")
	}
	if got := clone[1]; got != tag {
		t.Errorf("the checkout's branch is %s, the chart's appVersion %s: name the release's tag", got, tag)
	}
	if !strings.Contains(section, "helm install redis redis-ha-agent/charts/redis-ha-agent ") {
		t.Error("the quick start does not install the chart from the checkout's charts/redis-ha-agent")
	}
}
