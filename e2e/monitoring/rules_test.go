package monitoring

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// ruleTestFile is the promtool unit test file; its rule_files names
// rules.yaml, which the test writes beside a copy of it.
const ruleTestFile = "testdata/rules_test.yaml"

// TestAlertRules extracts spec.groups from the PrometheusRule the
// component builds, writes them as a Prometheus rule file, and runs
// `promtool check rules` and `promtool test rules` (testdata/
// rules_test.yaml) on it. Every alert must have a firing and a quiet case
// there, and every series a rule names must be one the agent exports.
func TestAlertRules(t *testing.T) {
	pc := promcheck(t)
	pt := promtool(t)
	rule := find(t, build(t, pc, builds["sentinel"]), "PrometheusRule", "")
	groups, _ := get(rule, "spec", "groups").([]any)
	if len(groups) == 0 {
		t.Fatal("the PrometheusRule has no spec.groups")
	}
	src, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, src, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("promtool check rules: %s", strings.TrimSpace(string(run(t, nil, pt, "check", "rules", rules))))

	tests, err := os.ReadFile(ruleTestFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, nil, pt, "test", "rules", filepath.Join(dir, "rules_test.yaml"))
	t.Logf("promtool test rules: %s", strings.TrimSpace(string(out)))

	alerts, exprs := alertsOf(t, groups)
	for _, msg := range coverage(t, alerts, tests) {
		t.Error(msg)
	}
	for _, msg := range unexported(t, pc, exported(t, pc), exprs) {
		if msg != "" {
			t.Error(msg)
		}
	}
}

// alertsOf lists the alert names and every rule's expression.
func alertsOf(t *testing.T, groups []any) (alerts, exprs []string) {
	t.Helper()
	for _, g := range groups {
		rs, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rs {
			r := r.(map[string]any)
			if a, ok := r["alert"].(string); ok {
				alerts = append(alerts, a)
			}
			exprs = append(exprs, str(r["expr"]))
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerting rules in spec.groups")
	}
	return alerts, exprs
}

// coverage says which alerts lack a firing case (an alert_rule_test with
// exp_alerts) or a quiet one (exp_alerts empty) in a promtool test file,
// and which cases name an alert the rules do not have.
func coverage(t *testing.T, alerts []string, testFile []byte) []string {
	t.Helper()
	var f struct {
		RuleFiles []string `json:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(testFile, &f); err != nil {
		t.Fatalf("%s: %v", ruleTestFile, err)
	}
	var msgs []string
	if len(f.RuleFiles) != 1 || f.RuleFiles[0] != "rules.yaml" {
		msgs = append(msgs, "rule_files must be [rules.yaml] (the file the test writes)")
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	known := map[string]bool{}
	for _, a := range alerts {
		known[a] = true
	}
	for _, tc := range f.Tests {
		for _, c := range tc.AlertRuleTest {
			if !known[c.Alertname] {
				msgs = append(msgs, "a test case names alert "+c.Alertname+", which the rules do not have")
			}
			if len(c.ExpAlerts) > 0 {
				firing[c.Alertname] = true
			} else {
				quiet[c.Alertname] = true
			}
		}
	}
	sort.Strings(alerts)
	for _, a := range alerts {
		if !firing[a] {
			msgs = append(msgs, "alert "+a+" has no firing case in "+ruleTestFile)
		}
		if !quiet[a] {
			msgs = append(msgs, "alert "+a+" has no quiet case (exp_alerts empty) in "+ruleTestFile)
		}
	}
	return msgs
}

// TestCoverageFindsGaps: the coverage check reports a missing firing and
// quiet case and an unknown alert name, and nothing for a complete file.
func TestCoverageFindsGaps(t *testing.T) {
	file := []byte(`rule_files: [rules.yaml]
tests:
  - alert_rule_test:
      - {alertname: A, exp_alerts: [{exp_labels: {severity: info}}]}
      - {alertname: A, exp_alerts: []}
      - {alertname: B, exp_alerts: [{exp_labels: {severity: info}}]}
      - {alertname: Gone}
`)
	got := coverage(t, []string{"A", "B", "C"}, file)
	want := []string{
		"a test case names alert Gone, which the rules do not have",
		"alert B has no quiet case (exp_alerts empty) in " + ruleTestFile,
		"alert C has no firing case in " + ruleTestFile,
		"alert C has no quiet case (exp_alerts empty) in " + ruleTestFile,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("coverage =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := coverage(t, []string{"A"}, []byte("rule_files: [rules.yaml]\ntests:\n  - alert_rule_test:\n      - {alertname: A, exp_alerts: [{}]}\n      - {alertname: A}\n")); len(got) != 0 {
		t.Errorf("coverage of a complete file = %v, want nothing", got)
	}
}
