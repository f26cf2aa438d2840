package httpserver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
)

type fakeMode struct {
	healthy, live, ready, preStop func(context.Context) error
	status                        func(context.Context) any
}

var _ Mode = (*fakeMode)(nil)

func (f *fakeMode) Healthy(ctx context.Context) error { return f.healthy(ctx) }
func (f *fakeMode) Live(ctx context.Context) error    { return f.live(ctx) }
func (f *fakeMode) Ready(ctx context.Context) error   { return f.ready(ctx) }
func (f *fakeMode) Status(ctx context.Context) any    { return f.status(ctx) }
func (f *fakeMode) PreStop(ctx context.Context) error { return f.preStop(ctx) }

func TestServerEndpoints(t *testing.T) {
	prestopCalled := false
	mode := &fakeMode{
		healthy: func(context.Context) error { return nil },
		live:    func(context.Context) error { return nil },
		ready:   func(context.Context) error { return errors.New("replica link down") },
		status:  func(context.Context) any { return map[string]string{"role": "replica"} },
		preStop: func(ctx context.Context) error {
			prestopCalled = true
			_, ok := ctx.Deadline()
			return map[bool]error{true: nil, false: errors.New("no deadline")}[ok]
		},
	}
	s := &Server{Mode: mode, Metrics: metrics.New("test", "sentinel"), Log: zerolog.Nop(), ProbeTimeout: time.Second, SwitchoverTimeout: time.Second}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	cases := map[string]struct {
		path     string
		wantCode int
		wantBody string
	}{
		"health":  {"/healthz", 200, "ok"},
		"live":    {"/livez", 200, "ok"},
		"ready":   {"/readyz", 503, "replica link down"},
		"status":  {"/status", 200, `"role": "replica"`},
		"metrics": {"/metrics", 200, `redis_ha_agent_build_info{goversion=`},
		"prestop": {"/prestop", 200, "ok"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
		})
	}
	if !prestopCalled {
		t.Error("GET /prestop did not call Mode.PreStop")
	}
}

// TestHealthz: /healthz is the agent container's liveness. It follows the
// agent's own health (Mode.Healthy) and nothing else: redis-server down
// (/livez failing) or not ready must not fail it, or the kubelet would
// restart a working agent for what redis-server does.
func TestHealthz(t *testing.T) {
	up := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.1:6379: connect: connection refused") }
	cases := map[string]struct {
		reason   string
		healthy  func(context.Context) error
		redis    func(context.Context) error
		wantCode int
		wantBody string
	}{
		"Healthy": {
			reason:  "loop finishing passes, redis-server up",
			healthy: up, redis: up,
			wantCode: 200, wantBody: "ok",
		},
		"RedisDown": {
			reason:  "redis-server down is /livez's and /readyz's business, not the agent's liveness",
			healthy: up, redis: down,
			wantCode: 200, wantBody: "ok",
		},
		"LoopStuck": {
			reason:   "a stuck reconcile loop fails the agent's liveness, with the reason",
			healthy:  func(context.Context) error { return errors.New("the reconcile loop has finished no pass for 3m0s") },
			redis:    up,
			wantCode: 503, wantBody: "finished no pass for 3m0s",
		},
		"CheckTimesOut": {
			reason: "a check that does not return within the probe timeout fails, as the kubelet's own timeout would",
			healthy: func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			},
			redis:    up,
			wantCode: 503, wantBody: "deadline exceeded",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			mode := &fakeMode{healthy: tc.healthy, live: tc.redis, ready: tc.redis}
			s := &Server{Mode: mode, Metrics: metrics.New("test", "sentinel"), Log: zerolog.Nop(), ProbeTimeout: 50 * time.Millisecond, SwitchoverTimeout: time.Second}
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("%s: GET /healthz = %d %q, want %d containing %q", tc.reason, resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestPreStopSingleFlight(t *testing.T) {
	release := make(chan struct{})
	calls := 0
	var mu sync.Mutex
	mode := &fakeMode{preStop: func(ctx context.Context) error {
		mu.Lock()
		calls++
		mu.Unlock()
		<-release
		return nil
	}}
	s := &Server{Mode: mode, Metrics: metrics.New("test", "sentinel"), Log: zerolog.Nop(), ProbeTimeout: time.Second, SwitchoverTimeout: 5 * time.Second}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	results := make(chan int, 3)
	for range 3 {
		go func() {
			resp, err := http.Get(srv.URL + "/prestop")
			if err != nil {
				results <- -1
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	// All three hook calls must be waiting on one switchover before it ends.
	deadline := time.Now().Add(5 * time.Second)
	for waiting := 0; waiting < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 /prestop calls waiting after 5s", waiting)
		}
		time.Sleep(10 * time.Millisecond)
		s.mu.Lock()
		if s.inflight != nil {
			waiting = s.inflight.waiters
		}
		s.mu.Unlock()
	}
	close(release)
	for range 3 {
		if code := <-results; code != 200 {
			t.Errorf("a /prestop call returned %d, want 200", code)
		}
	}
	if calls != 1 {
		t.Errorf("Mode.PreStop ran %d times for 3 concurrent hook calls, want 1", calls)
	}
}

// TestPreStopRefused: a /prestop call that MayStop refuses never reaches
// Mode.PreStop; the caller learns why (409 not terminating, 503 cannot
// tell), and an allowed call runs it.
func TestPreStopRefused(t *testing.T) {
	cases := map[string]struct {
		ok       bool
		reason   string
		err      error
		wantCode int
		wantBody string
		wantRun  bool
	}{
		"NotTerminating": {ok: false, reason: "pod redis-0 is not being deleted", wantCode: 409, wantBody: "preStop refused, nothing changed: pod redis-0 is not being deleted"},
		"CannotTell":     {err: errors.New("read pod: forbidden"), wantCode: 503, wantBody: "nothing changed: read pod: forbidden"},
		"Terminating":    {ok: true, reason: "being deleted", wantCode: 200, wantBody: "ok", wantRun: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ran := false
			mode := &fakeMode{preStop: func(context.Context) error { ran = true; return nil }}
			s := &Server{Mode: mode, Metrics: metrics.New("test", "sentinel"), Log: zerolog.Nop(), ProbeTimeout: time.Second, SwitchoverTimeout: time.Second,
				MayStop: func(context.Context) (bool, string, error) { return tc.ok, tc.reason, tc.err }}
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/prestop")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("GET /prestop = %d %q, want %d containing %q", resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
			if ran != tc.wantRun {
				t.Errorf("Mode.PreStop ran: %t, want %t", ran, tc.wantRun)
			}
		})
	}
}
