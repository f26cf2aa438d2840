package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
)

// series lists every series name a new agent serves on /metrics, read
// from the agent's own handler, so a rule or panel that names a series the
// agent does not export is caught. The engine series appears only once
// redis-server answered, so it is set here; the mode changes no name.
func series(out io.Writer) error {
	m := metrics.New("promcheck", "sentinel")
	m.SetEngine("redis", "7.0.15")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		return fmt.Errorf("agent /metrics answered %d: %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		return fmt.Errorf("parse the agent's /metrics: %w", err)
	}
	var names []string
	for name, f := range fams {
		switch f.GetType().String() {
		case "HISTOGRAM":
			names = append(names, name+"_bucket", name+"_sum", name+"_count")
		case "SUMMARY":
			names = append(names, name, name+"_sum", name+"_count")
		default:
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return json.NewEncoder(out).Encode(names)
}
