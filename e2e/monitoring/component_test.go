package monitoring

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// builds are the kustomizations that include the component, one per mode.
var builds = map[string]string{"sentinel": "testdata/sentinel", "cluster": "testdata/cluster"}

// TestComponentBuilds: on both bases the component builds, its objects
// decode strictly into prometheus-operator's types (promcheck build fails
// otherwise), the PodMonitor scrapes the agent port of exactly the
// StatefulSet's pods with the labels the rules group by, the rules are the
// same in both modes, and the dashboard ConfigMap carries dashboard.json
// with the label Grafana's sidecar looks for.
func TestComponentBuilds(t *testing.T) {
	pc := promcheck(t)
	dashboard, err := os.ReadFile(componentDir + "/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]any{}
	for mode, dir := range builds {
		t.Run(mode, func(t *testing.T) {
			objs := build(t, pc, dir)
			sts := find(t, objs, "StatefulSet", "")
			pm := find(t, objs, "PodMonitor", "")
			if want := sts.name() + "-agent"; pm.name() != want {
				t.Errorf("PodMonitor is %q, want %q", pm.name(), want)
			}
			if d := cmp.Diff(get(sts, "spec", "selector"), get(pm, "spec", "selector")); d != "" {
				t.Errorf("PodMonitor selector differs from the StatefulSet's (-sts +podmonitor):\n%s", d)
			}
			eps, _ := get(pm, "spec", "podMetricsEndpoints").([]any)
			if len(eps) != 2 {
				t.Fatalf("PodMonitor has %d podMetricsEndpoints, want 2 (the agent, redis_exporter)", len(eps))
			}
			ep := object(eps[0].(map[string]any))
			checkAgentPort(t, sts, ep["port"], ep["path"])
			checkRelabelings(t, ep["relabelings"], "redis-ha-agent")
			ep = object(eps[1].(map[string]any))
			checkExporterPort(t, sts, ep["port"], ep["path"], true)
			checkRelabelings(t, ep["relabelings"], "redis-exporter")
			rules[mode] = get(find(t, objs, "PrometheusRule", ""), "spec")
			cm := find(t, objs, "ConfigMap", "redis-ha-agent-dashboard")
			if l := get(cm, "metadata", "labels", "grafana_dashboard"); l != "1" {
				t.Errorf("dashboard ConfigMap label grafana_dashboard = %v, want \"1\"", l)
			}
			if got := get(cm, "data", "redis-ha-agent.json"); got != string(dashboard) {
				t.Errorf("dashboard ConfigMap data[redis-ha-agent.json] is not dashboard.json (%d bytes, want %d)", len(str(got)), len(dashboard))
			}
		})
	}
	if d := cmp.Diff(rules["sentinel"], rules["cluster"]); d != "" {
		t.Errorf("the PrometheusRule differs between the modes (-sentinel +cluster):\n%s", d)
	}
}

// TestComponentOnEveryOverlay: the component added to each overlay under
// manifests/overlays (a kustomization in a temporary directory, as a user
// would write it) selects exactly that overlay's StatefulSet pods and
// scrapes its agent. seed002-with-agent-init runs only the init step:
// there is no agent to scrape, which the test checks instead.
func TestComponentOnEveryOverlay(t *testing.T) {
	overlays, err := filepath.Glob(repoRoot + "/manifests/overlays/*/kustomization.yaml")
	if err != nil || len(overlays) < 9 {
		t.Fatalf("found %d overlays under manifests/overlays (%v), want at least 9", len(overlays), err)
	}
	pc := promcheck(t)
	for _, k := range overlays {
		overlay, err := filepath.Abs(filepath.Dir(k))
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(overlay)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			relOverlay, err := filepath.Rel(dir, overlay)
			if err != nil {
				t.Fatal(err)
			}
			relComponent, err := filepath.Rel(dir, filepath.Join(overlay, "../../components/monitoring"))
			if err != nil {
				t.Fatal(err)
			}
			src := "resources: [" + relOverlay + "]\ncomponents: [" + relComponent + "]\n"
			if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			objs := build(t, pc, dir)
			sts := find(t, objs, "StatefulSet", "")
			pm := find(t, objs, "PodMonitor", sts.name()+"-agent")
			if d := cmp.Diff(get(sts, "spec", "selector"), get(pm, "spec", "selector")); d != "" {
				t.Errorf("PodMonitor selector differs from the StatefulSet's (-sts +podmonitor):\n%s", d)
			}
			if name == "seed002-with-agent-init" {
				if hasAgent(sts) {
					t.Errorf("%s has an agent sidecar now: drop its exception here", name)
				}
				return
			}
			eps := get(pm, "spec", "podMetricsEndpoints").([]any)
			ep := object(eps[0].(map[string]any))
			checkAgentPort(t, sts, ep["port"], ep["path"])
			// The exporter's endpoint finds its port only where the
			// overlay includes components/redis-exporter.
			ep = object(eps[1].(map[string]any))
			checkExporterPort(t, sts, ep["port"], ep["path"], name == "production")
		})
	}
}

func hasAgent(sts object) bool {
	inits, _ := get(sts, "spec", "template", "spec", "initContainers").([]any)
	for _, c := range inits {
		if c.(map[string]any)["name"] == "agent" {
			return true
		}
	}
	return false
}

// checkAgentPort: the PodMonitor's port is the named port of the agent
// sidecar (a native sidecar: an initContainer with restartPolicy Always),
// the one the agent serves /metrics on.
func checkAgentPort(t *testing.T, sts object, port, path any) {
	t.Helper()
	if path != "/metrics" {
		t.Errorf("PodMonitor path = %v, want /metrics", path)
	}
	inits, _ := get(sts, "spec", "template", "spec", "initContainers").([]any)
	for _, c := range inits {
		c := object(c.(map[string]any))
		if c["name"] != "agent" {
			continue
		}
		if c["restartPolicy"] != "Always" {
			t.Errorf("agent container restartPolicy = %v, want Always (a native sidecar)", c["restartPolicy"])
		}
		addr := ""
		env, _ := c["env"].([]any)
		for _, e := range env {
			if e := e.(map[string]any); e["name"] == "REDIS_HA_HTTP_ADDR" {
				addr = str(e["value"])
			}
		}
		ports, _ := c["ports"].([]any)
		for _, p := range ports {
			p := p.(map[string]any)
			if p["name"] == port {
				if want := ":" + str(p["containerPort"]); addr != want {
					t.Errorf("port %v is %v but the agent listens on REDIS_HA_HTTP_ADDR=%q", port, p["containerPort"], addr)
				}
				return
			}
		}
		t.Fatalf("PodMonitor port %v is not a named port of the agent container (ports %v)", port, ports)
	}
	t.Fatalf("no initContainer named agent in StatefulSet %s", sts.name())
}

// checkExporterPort: the PodMonitor's second port is the named port of
// the redis-exporter container where the build has one (want), and no
// container's port name otherwise (so that endpoint makes no target).
func checkExporterPort(t *testing.T, sts object, port, path any, want bool) {
	t.Helper()
	if path != "/metrics" {
		t.Errorf("PodMonitor exporter path = %v, want /metrics", path)
	}
	var found []string
	for _, list := range []string{"initContainers", "containers"} {
		cs, _ := get(sts, "spec", "template", "spec", list).([]any)
		for _, c := range cs {
			c := object(c.(map[string]any))
			ports, _ := c["ports"].([]any)
			for _, p := range ports {
				p := p.(map[string]any)
				if p["name"] != port {
					continue
				}
				found = append(found, str(c["name"]))
				// The exporter listens on :9121 (REDIS_EXPORTER_WEB_LISTEN_ADDRESS unset).
				if c["name"] != "redis-exporter" || str(p["containerPort"]) != "9121" {
					t.Errorf("PodMonitor port %v is port %v of container %v, want 9121 of redis-exporter", port, p["containerPort"], c["name"])
				}
			}
		}
	}
	if want && len(found) != 1 || !want && len(found) != 0 {
		t.Errorf("PodMonitor port %v is a named port of %v; want it on the redis-exporter container: %v", port, found, want)
	}
}

// checkRelabelings: the labels the rules and the dashboard group by.
func checkRelabelings(t *testing.T, rl any, job string) {
	t.Helper()
	want := map[string]bool{"statefulset<-__meta_kubernetes_pod_controller_name": false, "job=" + job: false}
	list, _ := rl.([]any)
	for _, r := range list {
		r := r.(map[string]any)
		src, _ := r["sourceLabels"].([]any)
		switch {
		case r["targetLabel"] == "statefulset" && len(src) == 1 && src[0] == "__meta_kubernetes_pod_controller_name":
			want["statefulset<-__meta_kubernetes_pod_controller_name"] = true
		case r["targetLabel"] == "job" && r["replacement"] == job && len(src) == 0:
			want["job="+job] = true
		}
	}
	for k, ok := range want {
		if !ok {
			t.Errorf("PodMonitor relabelings lack %s: %v", k, rl)
		}
	}
}

// get walks nested maps.
func get(o object, path ...string) any {
	var v any = map[string]any(o)
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// TestStrictDecodingRefusesTypos: promcheck build refuses a PodMonitor
// with a misspelt field, which the API server would silently prune (so
// TestComponentBuilds' decoding can fail).
func TestStrictDecodingRefusesTypos(t *testing.T) {
	pc := promcheck(t)
	out, err := exec.Command(pc, "build", "testdata/invalid").CombinedOutput()
	if err == nil {
		t.Fatalf("promcheck build accepted a PodMonitor with podMetricEndpoints:\n%s", out)
	}
	if !strings.Contains(string(out), "does not decode strictly") || !strings.Contains(string(out), "podMetricEndpoints") {
		t.Errorf("promcheck build failed, but not on the misspelt field: %s", out)
	}
	t.Logf("refused as expected: %s", strings.TrimSpace(string(out)))
}

// TestREADMESnippets: README.md's kustomization that enables the component
// builds (with the paths it names, relative to manifests/overlays/X) and
// labels the objects for Prometheus' selector; its patches leave out the
// rules and the dashboard and nothing else.
func TestREADMESnippets(t *testing.T) {
	readme, err := os.ReadFile(repoRoot + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	manifests, err := filepath.Abs(repoRoot + "/manifests")
	if err != nil {
		t.Fatal(err)
	}
	// The snippets are written for a directory two levels below manifests/;
	// kustomize takes only relative paths.
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, manifests)
	if err != nil {
		t.Fatal(err)
	}
	enable := strings.ReplaceAll(yamlAfter(t, readme, "<!-- monitoring-enable"), "../../", rel+"/")
	leaveOut := yamlAfter(t, readme, "<!-- monitoring-leave-out")
	pc := promcheck(t)

	kinds := func(yaml string) map[string]object {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		m := map[string]object{}
		for _, o := range build(t, pc, dir) {
			m[o.kind()+"/"+o.name()] = o
		}
		return m
	}
	full := kinds(enable)
	for _, k := range []string{"PodMonitor/redis-agent", "PrometheusRule/redis-ha-agent", "ConfigMap/redis-ha-agent-dashboard"} {
		o, ok := full[k]
		if !ok {
			t.Errorf("README's kustomization builds no %s", k)
			continue
		}
		if l := get(o, "metadata", "labels", "release"); l != "kube-prometheus-stack" {
			t.Errorf("%s label release = %v, want kube-prometheus-stack (README's labels:)", k, l)
		}
	}
	without := kinds(enable + leaveOut)
	for k := range full {
		_, kept := without[k]
		gone := k == "PrometheusRule/redis-ha-agent" || k == "ConfigMap/redis-ha-agent-dashboard"
		if kept == gone {
			t.Errorf("with README's patches %s kept = %v, want %v", k, kept, !gone)
		}
	}
}

// yamlAfter returns the first ```yaml block after marker in a document.
func yamlAfter(t *testing.T, doc []byte, marker string) string {
	t.Helper()
	_, rest, ok := strings.Cut(string(doc), marker)
	if !ok {
		t.Fatalf("README.md has no %s marker", marker)
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	if !ok {
		t.Fatalf("README.md has no ```yaml block after %s", marker)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("README.md's ```yaml block after %s is not closed", marker)
	}
	return block
}
