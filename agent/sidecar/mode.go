package sidecar

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/httpserver"
	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
	"github.com/redis-ha-agent/redis-ha-agent/agent/rotation"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
)

// Mode is one HA topology's run-time behaviour. The sidecar's HTTP server and
// lifecycle are shared; everything that decides is behind this interface.
type Mode interface {
	// Run reconciles until ctx ends.
	Run(ctx context.Context) error
	// Live, Ready, Status and PreStop answer the HTTP endpoints.
	httpserver.Mode
}

// Deps are the shared parts a Mode acts through. Built once by Run.
type Deps struct {
	Log      zerolog.Logger
	Kube     kubeapi.Clients      // general API traffic
	Election kubeapi.Clients      // its own client so throttling elsewhere can't starve Lease renewals
	Events   events.EventRecorder // Events on this pod for every decision
	Metrics  *metrics.Metrics
	Password *secrets.Password
	// Rotation holds the password of every outgoing auth during a
	// rotation (the agent's clients, masterauth, Sentinel's auth-pass).
	Rotation *rotation.Rotator
	TLS      *secrets.TLSFiles // nil: plaintext
	// ACLFile is --acl-file, the application users; nil: none.
	ACLFile *secrets.File
	Clock   clock.WithTicker
}

// NewHTTPServer is the agent's one HTTP port for a mode. /prestop acts only
// while this pod is being deleted (preStopVerdict): the port is open to
// every pod.
func NewHTTPServer(cfg config.Config, deps Deps, mode Mode) *httpserver.Server {
	return &httpserver.Server{
		Addr:              cfg.HTTPAddr,
		Mode:              mode,
		Metrics:           deps.Metrics,
		Log:               deps.Log,
		ProbeTimeout:      2 * time.Second,
		SwitchoverTimeout: cfg.SwitchoverTimeout,
		MayStop:           NewSelfPod(cfg, deps).Terminating,
	}
}
