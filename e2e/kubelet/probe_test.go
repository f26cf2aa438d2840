package kubelet

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestProbeCounter(t *testing.T) {
	// Readiness: starts unready, needs 2 successes, 3 failures to drop.
	c := probeCounter{s: settings(&v1.Probe{SuccessThreshold: 2, FailureThreshold: 3}), known: true}
	steps := []struct {
		ok             bool
		result, report bool
	}{
		{true, false, false}, {true, true, true}, {true, true, false},
		{false, true, false}, {false, true, false}, {false, false, true}, {false, false, false},
		{true, false, false}, {true, true, true},
	}
	for i, s := range steps {
		r, rep := c.observe(s.ok)
		if r != s.result || rep != s.report {
			t.Fatalf("step %d (ok=%v): result %v report %v, want %v %v", i, s.ok, r, rep, s.result, s.report)
		}
	}
}

func TestProbeDefaultsAndPorts(t *testing.T) {
	s := settings(&v1.Probe{})
	if s.period.Seconds() != 10 || s.success != 1 || s.failure != 3 || s.initialDelay != 0 {
		t.Errorf("defaults = %+v", s)
	}
	ports := []v1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	for in, want := range map[string]int{"http": 8080, "6379": 6379} {
		if got, err := resolvePort(intstr.FromString(in), ports); err != nil || got != want {
			t.Errorf("resolvePort(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := resolvePort(intstr.FromString("metrics"), ports); err == nil {
		t.Errorf("unknown named port resolved")
	}
}

func TestHTTPGetAndTCPSocket(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Probe") != "yes" || r.URL.RawQuery != "full=1" || r.Host != "agent.local" {
			http.Error(w, "bad request shape", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusFound) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	var d net.Dialer
	target := handlerTarget{podIP: host, ports: []v1.ContainerPort{{Name: "agent-http", ContainerPort: int32(port)}}, dial: d.DialContext}
	ctx := context.Background()
	get := func(path string) error {
		return httpGet(ctx, &v1.HTTPGetAction{Path: path, Port: intstr.FromString("agent-http"),
			HTTPHeaders: []v1.HTTPHeader{{Name: "X-Probe", Value: "yes"}, {Name: "Host", Value: "agent.local"}}}, target)
	}
	if err := get("/ok?full=1"); err != nil {
		t.Errorf("/ok: %v", err)
	}
	if err := get("/redirect"); err != nil {
		t.Errorf("a 3xx is a success: %v", err)
	}
	if err := get("/fail"); err == nil || !strings.Contains(err.Error(), "statuscode: 503: not ready") {
		t.Errorf("/fail: %v", err)
	}
	if err := tcpSocket(ctx, &v1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}, target); err != nil {
		t.Errorf("tcpSocket to a listening port: %v", err)
	}
	srv.Close()
	if err := tcpSocket(ctx, &v1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}, target); err == nil {
		t.Errorf("tcpSocket to a closed port succeeded")
	}
	// runProbe applies the timeout.
	slow := handlerTarget{exec: func(ctx context.Context, _ []string) error { <-ctx.Done(); return ctx.Err() }}
	start := time.Now()
	if err := runProbe(ctx, &v1.Probe{TimeoutSeconds: 1, ProbeHandler: v1.ProbeHandler{Exec: &v1.ExecAction{Command: []string{"x"}}}}, slow); err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("slow exec probe: %v after %s", err, time.Since(start))
	}
}
