package metrics

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// After an image change only the new engine has a series, and none exists
// before the first SetEngine.
func TestSetEngine(t *testing.T) {
	m := New("test", "sentinel")
	if got := engineSeries(t, m); len(got) != 0 {
		t.Fatalf("before redis-server answered: want no engine series, got %v", got)
	}
	m.SetEngine("redis", "7.0.15")
	m.SetEngine("valkey", "8.1.1")
	want := []string{"redis_ha_agent_engine_info{engine=valkey,version=8.1.1} 1"}
	if diff := cmp.Diff(want, engineSeries(t, m)); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

func engineSeries(t *testing.T, m *Metrics) []string {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		if mf.GetName() != "redis_ha_agent_engine_info" {
			continue
		}
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got = append(got, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(labels, ","), s.GetGauge().GetValue()))
		}
	}
	return got
}
