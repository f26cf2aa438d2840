package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/httpserver"
	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
)

// InitEnv is what init reaches beside the API server; the zero value is the
// real world.
type InitEnv struct {
	// LookupHost resolves peers' names for cluster mode's nodes.conf
	// rewrite; nil is the system resolver.
	LookupHost LookupHost
}

// Init runs once in the initContainer: it decides this pod's role and writes
// the configuration redis-server (and redis-sentinel) start from.
// A failure is also published as a Warning Event (InitFailed) on the pod
// when the init container has an API client.
func Init(ctx context.Context, cfg Config, log zerolog.Logger, env InitEnv) error {
	routeLibraryLogs(log)
	var err error
	switch cfg.Mode {
	case ModeSentinel:
		err = initSentinel(ctx, cfg, log)
	case ModeCluster:
		err = initCluster(ctx, cfg, log, env.LookupHost)
	default:
		err = fmt.Errorf("--mode (REDIS_HA_MODE) %q is not known: use sentinel or cluster", cfg.Mode)
	}
	if err != nil && ctx.Err() == nil {
		reportFailure(cfg, "InitFailed", "Init", err, log)
	}
	return err
}

// Run is the sidecar: it builds the shared parts, the mode, and runs the
// HTTP server, the password watcher and the mode's reconcile loop until ctx
// ends or one of them fails. A failure other than ctx ending is also
// published as a Warning Event (AgentFailed) on the pod.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	routeLibraryLogs(log)
	err := run(ctx, cfg, log)
	if err != nil && ctx.Err() == nil {
		reportFailure(cfg, "AgentFailed", "Run", err, log)
	}
	return err
}

func run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	log = log.With().Str("pod", cfg.PodName).Str("mode", cfg.Mode).Logger()
	pw, err := NewPassword(cfg.PasswordFile)
	if err != nil {
		return err
	}
	tlsFiles, err := NewTLSFiles(cfg.TLS, []string{cfg.PodFQDN(cfg.Ordinal())}, clock.RealClock{})
	if err != nil {
		return err
	}
	kube, election, err := kubeapi.NewClients(cfg.Kubeconfig, "redis-ha-agent/"+cfg.Version)
	if err != nil {
		return err
	}
	rec, stopEvents := kubeapi.NewRecorder(ctx, kube)
	defer stopEvents()
	deps := Deps{
		Log:      log,
		Kube:     kube,
		Election: election,
		Events:   rec,
		Metrics:  metrics.New(cfg.Version, cfg.Mode),
		Password: pw,
		TLS:      tlsFiles,
		Clock:    clock.RealClock{},
	}
	tlsFiles.Observe(deps.Metrics)
	var mode Mode
	switch cfg.Mode {
	case ModeSentinel:
		mode, err = newSentinelMode(cfg, deps)
	case ModeCluster:
		mode, err = newClusterMode(cfg, deps)
	default:
		err = fmt.Errorf("--mode (REDIS_HA_MODE) %q is not known: use sentinel or cluster", cfg.Mode)
	}
	if err != nil {
		return err
	}
	srv := newHTTPServer(cfg, deps, mode)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { return pw.Run(ctx, log, deps.Clock, cfg.ResyncInterval) })
	g.Go(func() error { return tlsFiles.Run(ctx, log, deps.Clock, cfg.ResyncInterval) })
	g.Go(func() error { return mode.Run(ctx) })
	return g.Wait()
}

// newHTTPServer is the agent's one HTTP port for a mode. /prestop acts only
// while this pod is being deleted (preStopVerdict): the port is open to
// every pod.
func newHTTPServer(cfg Config, deps Deps, mode Mode) *httpserver.Server {
	return &httpserver.Server{
		Addr:              cfg.HTTPAddr,
		Mode:              mode,
		Metrics:           deps.Metrics,
		Log:               deps.Log,
		ProbeTimeout:      2 * time.Second,
		SwitchoverTimeout: cfg.SwitchoverTimeout,
		MayStop:           newSelfPod(cfg, deps).Terminating,
	}
}
