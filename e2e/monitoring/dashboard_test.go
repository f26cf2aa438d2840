package monitoring

import (
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"strings"
	"testing"
)

// grafanaVars are Grafana's interval variables, which PromQL cannot parse;
// they stand for a range, so any valid duration checks the same.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// labelValues is Grafana's label_values(SELECTOR, LABEL) template query.
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// dashboardExprs returns every PromQL expression in a Grafana dashboard:
// the panels' targets (rows' nested panels too) and the template
// variables' label_values selectors.
func dashboardExprs(t *testing.T, src []byte) (panels, vars []string) {
	t.Helper()
	var d struct {
		Panels     []dashPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(src, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q target %s has no expr", p.Title, tg.RefID)
					continue
				}
				panels = append(panels, grafanaVars.Replace(tg.Expr))
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		sel := labelValues.FindStringSubmatch(q)
		if sel == nil {
			t.Errorf("template variable %s: query %q is not label_values(SELECTOR, LABEL), which this test can check", v.Name, q)
			continue
		}
		vars = append(vars, sel[1])
	}
	return panels, vars
}

type dashPanel struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

// TestDashboardLayout: panel ids are unique, every panel queries the
// dashboard's data source variable (so it works with any Prometheus
// data source name), and no two panels overlap on the 24-column grid.
func TestDashboardLayout(t *testing.T) {
	src, err := os.ReadFile(componentDir + "/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string      `json:"uid"`
		Panels []dashPanel `json:"panels"`
	}
	if err := json.Unmarshal(src, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if d.UID == "" || len(d.Panels) < 8 {
		t.Fatalf("dashboard.json: uid %q, %d panels; want a uid and the panels", d.UID, len(d.Panels))
	}
	ids := map[int]string{}
	for i, p := range d.Panels {
		if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q uses data source %q, want ${datasource}", p.Title, p.Datasource.UID)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q gridPos %+v is off the 24-column grid", p.Title, g)
		}
		for _, q := range d.Panels[:i] {
			h := q.GridPos
			if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				t.Errorf("panels %q %+v and %q %+v overlap", q.Title, h, p.Title, g)
			}
		}
	}
}

// TestDashboard: every expression of dashboard.json parses as PromQL and
// names only series the agent exports, or redis_exporter serves for a
// real master and replica (exporterSeries: the built exporter scraping
// real redis-servers, and again valkey-servers), or `up`; every panel query is scoped to the chosen
// namespace and StatefulSet, and the series the dashboard exists to show
// are on it.
func TestDashboard(t *testing.T) {
	src, err := os.ReadFile(componentDir + "/dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	panels, vars := dashboardExprs(t, src)
	pc := promcheck(t)
	agent := exported(t, pc)
	for _, program := range []string{"redis-server", "valkey-server"} {
		known := maps.Clone(agent)
		for n := range exporterSeries(t, program) {
			known[n] = true
		}
		for _, msg := range unexported(t, pc, known, append(panels, vars...)) {
			if msg != "" {
				t.Errorf("with %s: %s", program, msg)
			}
		}
	}
	all := strings.Join(panels, "\n")
	for _, e := range panels {
		if !strings.Contains(e, `namespace="$namespace"`) || !strings.Contains(e, `statefulset="$statefulset"`) {
			t.Errorf("panel query %q is not scoped to namespace=\"$namespace\" and statefulset=\"$statefulset\"", e)
		}
	}
	for _, want := range []string{
		"redis_ha_agent_role", "redis_ha_agent_lease_holder", "redis_ha_agent_failovers_total",
		"redis_ha_agent_last_failover_duration_seconds", "redis_ha_agent_replication_lag_bytes",
		"redis_ha_agent_reconcile_errors_total", "redis_ha_agent_fenced",
		// redis_exporter's (components/redis-exporter)
		"redis_up", "redis_connected_clients", "redis_memory_used_bytes", "redis_commands_processed_total",
		"redis_connected_slaves", "redis_master_link_up", "redis_master_repl_offset",
	} {
		if !regexp.MustCompile(`\b` + want + `\{`).MatchString(all) {
			t.Errorf("no panel shows %s", want)
		}
	}
}

// TestSeriesCheckCatchesDrift: the check flags a name the agent does not
// export (a misspelt or renamed series) and passes the real ones, so a
// dashboard or rule that drifts from agent/metrics fails.
func TestSeriesCheckCatchesDrift(t *testing.T) {
	pc := promcheck(t)
	got := unexported(t, pc, exported(t, pc), []string{
		`rate(redis_ha_agent_failover_total[5m])`,
		`redis_ha_agent_role{role="master"} == 1 and on (pod) up`,
		`histogram_quantile(0.9, rate(redis_ha_agent_switchover_duration_seconds_bucket[5m]))`,
	})
	if !strings.Contains(got[0], "redis_ha_agent_failover_total") {
		t.Errorf("misspelt series not flagged: %q", got[0])
	}
	for _, g := range got[1:] {
		if g != "" {
			t.Errorf("exported series flagged: %s", g)
		}
	}
}

// TestREADMEMetricsTable: README.md's metrics table, which the alerts
// table and the dashboard refer users to, lists exactly the agent's own
// series (histograms by family name; `a_total` / `_b_total` rows name two).
func TestREADMEMetricsTable(t *testing.T) {
	readme, err := os.ReadFile(repoRoot + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "\n### Metrics\n")
	if !ok {
		t.Fatal("README.md has no ### Metrics section")
	}
	sec, _, _ = strings.Cut(sec, "\n### ")
	documented := map[string]bool{}
	prev := ""
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)(?:\\{[a-z,]+\\})?`(?: / `(_[a-z_]+)`)?").FindAllStringSubmatch(sec, -1) {
		documented[m[1]] = true
		prev = m[1]
		if short := m[2]; short != "" {
			// `redis_ha_agent_reconcile_passes_total` / `_errors_total`
			segs := strings.Split(prev, "_")
			n := len(strings.Split(short, "_")) - 1
			documented[strings.Join(segs[:len(segs)-n], "_")+short] = true
		}
	}
	if len(documented) < 10 {
		t.Fatalf("found only %v in README.md's metrics table", documented)
	}
	pc := promcheck(t)
	agent := map[string]bool{}
	for n := range exported(t, pc) {
		if !strings.HasPrefix(n, "redis_ha_agent_") {
			continue
		}
		switch {
		case strings.HasSuffix(n, "_bucket"):
			n = strings.TrimSuffix(n, "_bucket")
		case strings.HasSuffix(n, "_sum"), strings.HasSuffix(n, "_count"):
			continue // a histogram's, named by its family
		}
		agent[n] = true
	}
	for n := range agent {
		if !documented[n] {
			t.Errorf("the agent exports %s, which README.md's metrics table does not list", n)
		}
	}
	for n := range documented {
		if !agent[n] {
			t.Errorf("README.md's metrics table lists %s, which the agent does not export", n)
		}
	}
}
