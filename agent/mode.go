package agent

import (
	"context"

	"github.com/rs/zerolog"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
)

// Mode is one HA topology's run-time behaviour. The sidecar's HTTP server and
// lifecycle are shared; everything that decides is behind this interface.
type Mode interface {
	// Run reconciles until ctx ends.
	Run(ctx context.Context) error
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

// Deps are the shared parts a Mode acts through. Built once by Run.
type Deps struct {
	Log      zerolog.Logger
	Kube     Kube                 // general API traffic
	Election Kube                 // its own client so throttling elsewhere can't starve Lease renewals
	Events   events.EventRecorder // Events on this pod for every decision
	Metrics  *Metrics
	Password *Password
	Clock    clock.WithTicker
}
