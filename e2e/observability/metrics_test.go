package observability

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeOnce GETs /metrics from a pod's agent the way Prometheus would,
// from inside the cluster network, and parses the text exposition format.
func scrapeOnce(ctx context.Context, podIP string) (map[string]*dto.MetricFamily, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: env.Dial, DisableKeepAlives: true}}
	url := "http://" + net.JoinHostPort(podIP, "8080") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s %v", url, resp.Status, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s is not Prometheus text format: %w", url, err)
	}
	return fams, nil
}

// value returns the sample of family name whose labels include want
// (name=value pairs), and whether it exists.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// expectation is one series and the condition its value must meet.
type expectation struct {
	name   string
	labels []string
	ok     func(float64) bool
	want   string
}

// expectMetrics scrapes the pod's /metrics until every expectation holds
// or within passes (gauges follow the agent's reconcile passes, so they may
// trail what Redis says by a pass), then reports what still does not hold.
func expectMetrics(ctx context.Context, t *testing.T, pod, podIP string, within time.Duration, exps []expectation) {
	t.Helper()
	var problems []string
	var fams map[string]*dto.MetricFamily
	_ = pollUntil(ctx, within, func() error {
		var err error
		fams, err = scrapeOnce(ctx, podIP)
		if err != nil {
			problems = []string{err.Error()}
			return err
		}
		problems = unmet(fams, exps)
		if len(problems) > 0 {
			return fmt.Errorf("%d unmet", len(problems))
		}
		return nil
	})
	for _, p := range problems {
		t.Errorf("%s /metrics (after %s): %s", pod, within, p)
	}
	for _, e := range exps {
		if v, ok := value(fams, e.name, e.labels...); ok {
			t.Logf("%s /metrics: %s%v = %v", pod, e.name, e.labels, v)
		}
	}
}

func unmet(fams map[string]*dto.MetricFamily, exps []expectation) []string {
	var out []string
	for _, e := range exps {
		v, found := value(fams, e.name, e.labels...)
		series := e.name
		if len(e.labels) > 0 {
			series += fmt.Sprintf("%v", e.labels)
		}
		switch {
		case !found:
			out = append(out, "no series "+series)
		case !e.ok(v):
			out = append(out, fmt.Sprintf("%s = %v, want %s", series, v, e.want))
		}
	}
	return out
}

func eq(x float64) func(float64) bool { return func(v float64) bool { return v == x } }
func gt(x float64) func(float64) bool { return func(v float64) bool { return v > x } }
