package sentinel

import (
	"errors"
	"testing"
	"time"
)

func TestPeerNamesReportOnceAfterGraceAndOnRecovery(t *testing.T) {
	p := newPeerNames(30 * time.Second)
	t0 := time.Unix(1000, 0)
	nx := errors.New("no such host")
	steps := []struct {
		at         time.Duration
		err        error
		lost, back bool
	}{
		{0, nx, false, false},                // first failure starts the grace
		{20 * time.Second, nx, false, false}, // still within it
		{30 * time.Second, nx, true, false},  // reported once
		{40 * time.Second, nx, false, false}, // not again in the same outage
		{50 * time.Second, nil, false, true}, // back
		{55 * time.Second, nil, false, false},
		{60 * time.Second, nx, false, false},  // a new outage has its own grace
		{70 * time.Second, nil, false, false}, // short outage: never reported, so no "back"
	}
	for _, s := range steps {
		lost, back := p.observe("redis-1.redis-headless.ns.svc.cluster.local", s.err, t0.Add(s.at))
		if lost != s.lost || back != s.back {
			t.Errorf("at +%s err=%v: lost=%t back=%t, want lost=%t back=%t", s.at, s.err, lost, back, s.lost, s.back)
		}
	}
}
