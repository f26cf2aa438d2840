package charttest

import (
	"fmt"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// `helm lint --strict` through the SDK, for each mode and with the
// custom values of TestChartMatchesCustomKustomization: no error and no
// warning (informational messages are logged).
func TestLint(t *testing.T) {
	sets := map[string]map[string]any{
		"sentinel":                         {"mode": "sentinel"},
		"cluster":                          {"mode": "cluster"},
		"sentinel external access, domain": {"replicas": 5, "externalAccess": map[string]any{"enabled": true, "service": map[string]any{"domain": "redis.example.com"}}},
	}
	for name, c := range customCases {
		sets[name] = c.parsedValues(t)
	}
	for name, values := range sets {
		t.Run(name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = namespace
			lint.KubeVersion = parsedKubeVersion()
			res := lint.Run([]string{chartDir}, values)
			if res.TotalChartsLinted != 1 {
				t.Errorf("linted %d charts, want 1", res.TotalChartsLinted)
			}
			for _, m := range res.Messages {
				if m.Severity > support.InfoSev {
					t.Errorf("lint: %s", m)
				} else {
					t.Logf("lint: %s", m)
				}
			}
			for _, err := range res.Errors {
				t.Errorf("lint error: %v", err)
			}
		})
	}
}

// The lint of TestLint can fail: values the schema refuses are an error.
func TestLintReportsInvalidValues(t *testing.T) {
	lint := action.NewLint()
	lint.Strict = true
	lint.Namespace = namespace
	lint.KubeVersion = parsedKubeVersion()
	res := lint.Run([]string{chartDir}, map[string]any{"mode": "standalone"})
	if len(res.Errors) == 0 {
		t.Fatalf("helm lint passed mode: standalone; messages: %v", res.Messages)
	}
	if !strings.Contains(fmt.Sprint(res.Errors), "sentinel") {
		t.Errorf("lint errors %v do not name the allowed modes", res.Errors)
	}
}

// Values the chart refuses, each with the message a user needs: first
// values.schema.json's, then the templates' own checks, which hold with
// --skip-schema-validation too and check what no schema sees (the
// release name).
func TestInvalidValues(t *testing.T) {
	tests := map[string]struct {
		release    string
		values     map[string]any
		skipSchema bool
		want       string
	}{
		"schema: unknown mode": {
			values: map[string]any{"mode": "standalone"},
			want:   "at '/mode': value must be one of 'sentinel', 'cluster'",
		},
		"schema: misspelt value": {
			values: map[string]any{"replica": 5},
			want:   "additional properties 'replica' not allowed",
		},
		"schema: replicas not a number": {
			values: map[string]any{"replicas": "five"},
			want:   "at '/replicas': got string, want null or integer",
		},
		"schema: down-after not a duration": {
			values: map[string]any{"sentinel": map[string]any{"downAfter": "10"}},
			want:   "at '/sentinel/downAfter'",
		},
		"schema: fullnameOverride too long": {
			values: map[string]any{"fullnameOverride": strings.Repeat("r", 53)},
			want:   "at '/fullnameOverride': maxLength: got 53, want 52",
		},
		"schema: a monitoring switch not a boolean": {
			values: map[string]any{"metrics": map[string]any{"dashboard": map[string]any{"enabled": "yes"}}},
			want:   "at '/metrics/dashboard/enabled': got string, want boolean",
		},
		"schema: misspelt monitoring value": {
			values: map[string]any{"metrics": map[string]any{"podMonitor": map[string]any{"labels": map[string]any{"a": "b"}}}},
			want:   "additional properties 'labels' not allowed",
		},
		"template: serviceMonitor": {
			values: map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}},
			want:   "this chart has no ServiceMonitor; the agents are scraped by a PodMonitor (as manifests/components/monitoring): set metrics.podMonitor.enabled=true instead",
		},
		"schema: externalAccess LoadBalancer": {
			values: map[string]any{"externalAccess": map[string]any{"enabled": true, "service": map[string]any{"type": "LoadBalancer"}}},
			want:   "at '/externalAccess/service/type': value must be 'NodePort'",
		},
		"template: externalAccess in cluster mode": {
			values: map[string]any{"mode": "cluster", "externalAccess": map[string]any{"enabled": true}},
			want:   "externalAccess.enabled: external access is not supported in cluster mode yet",
		},
		"template: externalAccess NodePorts overlap": {
			values: map[string]any{"replicas": 5, "externalAccess": map[string]any{"enabled": true, "service": map[string]any{"nodePorts": map[string]any{"redis": 30379, "sentinel": 30382}}}},
			want:   "externalAccess.service.nodePorts: redis 30379 and sentinel 30382 overlap for 5 pods",
		},
		"template: release name too long": {
			release: strings.Repeat("r", 53),
			want:    "has 53 characters; at most 52 are allowed",
		},
		"template: unknown mode": {
			values:     map[string]any{"mode": "standalone"},
			skipSchema: true,
			want:       `mode "standalone" is not sentinel or cluster`,
		},
		"template: unknown engine": {
			values:     map[string]any{"engine": "keydb"},
			skipSchema: true,
			want:       `engine "keydb" is not redis or valkey`,
		},
		"template: unknown anti-affinity": {
			values:     map[string]any{"podAntiAffinity": "always"},
			skipSchema: true,
			want:       `podAntiAffinity "always" is not "", soft or hard`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			release := tc.release
			if release == "" {
				release = "redis"
			}
			_, err := renderSchema(release, tc.values, tc.skipSchema)
			if err == nil {
				t.Fatalf("rendered without error, want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// Chart.yaml's appVersion is the agent image the chart installs by default
// (the same tag the manifests name, which TestChartMatchesOverlays holds
// the chart to), so a release bumps them together.
func TestAppVersionIsTheAgentTag(t *testing.T) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load the chart %s: %v", chartDir, err)
	}
	image, _ := chrt.Values["image"].(map[string]any)
	agent, _ := image["agent"].(map[string]any)
	if tag := agent["tag"]; tag != chrt.Metadata.AppVersion {
		t.Errorf("values.yaml image.agent.tag = %v, Chart.yaml appVersion = %s: set both to the release's tag", tag, chrt.Metadata.AppVersion)
	}
}
