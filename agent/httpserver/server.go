package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
)

// Mode is what the endpoints ask of the HA mode that runs.
type Mode interface {
	// Healthy reports whether the agent itself works: its reconcile loop
	// keeps finishing passes. It must not ask redis-server or the API
	// server, whose outages the agent has to outlive: it is the agent
	// container's liveness.
	Healthy(ctx context.Context) error
	// Live reports whether redis-server answers (PING, or LOADING).
	Live(ctx context.Context) error
	// Ready reports whether this pod should receive traffic for its role.
	Ready(ctx context.Context) error
	// Status is the JSON body of /status.
	Status(ctx context.Context) any
	// PreStop hands the pod's role over before it stops; it returns when
	// done or when ctx (the switchover timeout) ends.
	PreStop(ctx context.Context) error
}

// Server is the agent's one HTTP port: probes, status, metrics and the
// preStop hook. Every endpoint asks the Mode; the server only translates.
type Server struct {
	Addr              string
	Mode              Mode
	Metrics           *metrics.Metrics
	Log               zerolog.Logger
	ProbeTimeout      time.Duration
	SwitchoverTimeout time.Duration
	// MayStop says whether a /prestop call comes from a stop of this pod:
	// not ok refuses it with 409 and the reason, err (cannot tell) with
	// 503; a refused call changes nothing. nil lets every call through.
	MayStop func(ctx context.Context) (ok bool, reason string, err error)

	mu       sync.Mutex
	inflight *switchover // the running preStop; later callers join it
}

// switchover is one preStop run that several hook calls may wait on:
// kubelet retries and a second container's hook must not start a second
// handover beside the first.
type switchover struct {
	done    chan struct{}
	err     error
	waiters int // hook calls waiting on it, for tests and logs
}

// Handler routes the endpoints (no DefaultServeMux).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	// The agent's own liveness: answered by this server, so a frozen or
	// dead agent fails it, and 503 while the reconcile loop is stuck.
	mux.HandleFunc("GET /healthz", s.probe(s.Mode.Healthy))
	mux.HandleFunc("GET /livez", s.probe(s.Mode.Live))
	mux.HandleFunc("GET /readyz", s.probe(s.Mode.Ready))
	mux.HandleFunc("GET /status", s.status)
	mux.Handle("GET /metrics", s.Metrics.Handler())
	mux.HandleFunc("GET /prestop", s.prestop) // kubelet's httpGet preStop uses GET
	mux.HandleFunc("POST /prestop", s.prestop)
	return mux
}

func (s *Server) probe(check func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.ProbeTimeout)
		defer cancel()
		if err := check(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.ProbeTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s.Mode.Status(ctx)); err != nil {
		s.Log.Warn().Err(err).Msg("write /status")
	}
}

func (s *Server) prestop(w http.ResponseWriter, r *http.Request) {
	if s.MayStop != nil {
		log := s.Log.With().Str("component", "prestop").Str("remote", r.RemoteAddr).Logger()
		ok, reason, err := s.MayStop(r.Context())
		switch {
		case err != nil:
			log.Warn().Err(err).Msg("preStop refused: cannot tell whether this pod is being deleted; nothing changed")
			http.Error(w, "preStop refused, nothing changed: "+err.Error(), http.StatusServiceUnavailable)
			return
		case !ok:
			log.Warn().Str("reason", reason).Msg("preStop refused; nothing changed")
			http.Error(w, "preStop refused, nothing changed: "+reason+"; the handover runs only when this pod stops", http.StatusConflict)
			return
		}
		log.Info().Str("reason", reason).Msg("preStop accepted")
	}
	if err := s.preStopOnce(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "ok")
}

// preStopOnce runs Mode.PreStop, or waits for the run already under way.
// The switchover must not end because kubelet gave up on the request: it
// runs for its own timeout, detached from any request's context.
func (s *Server) preStopOnce() error {
	s.mu.Lock()
	sw := s.inflight
	if sw == nil {
		sw = &switchover{done: make(chan struct{})}
		s.inflight = sw
		go s.runPreStop(sw)
	}
	sw.waiters++
	s.mu.Unlock()
	<-sw.done
	return sw.err
}

func (s *Server) runPreStop(sw *switchover) {
	ctx, cancel := context.WithTimeout(context.Background(), s.SwitchoverTimeout)
	defer cancel()
	log := s.Log.With().Str("component", "prestop").Logger()
	start := time.Now()
	log.Info().Msg("preStop: handing the role over before this pod stops")
	sw.err = s.Mode.PreStop(ctx)
	if sw.err != nil {
		log.Error().Err(sw.err).Dur("took", time.Since(start)).Msg("preStop switchover failed; the pod stops anyway and Sentinel/Redis Cluster fail over")
	} else {
		log.Info().Dur("took", time.Since(start)).Msg("preStop done")
	}
	s.mu.Lock()
	s.inflight = nil // a later, separate stop may run again
	s.mu.Unlock()
	close(sw.done)
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on --http-addr (REDIS_HA_HTTP_ADDR) %s: %w", s.Addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.Log.Info().Str("component", "http").Str("addr", ln.Addr().String()).Msg("serving /healthz /livez /readyz /status /metrics /prestop")
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
