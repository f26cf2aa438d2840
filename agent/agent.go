package agent

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/cluster"
	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/rotation"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

// InitEnv is what init reaches beside the API server; the zero value is the
// real world.
type InitEnv struct {
	// LookupHost resolves peers' names for cluster mode's nodes.conf
	// rewrite; nil is the system resolver.
	LookupHost cluster.LookupHost
}

// Init runs once in the initContainer: it decides this pod's role and writes
// the configuration redis-server (and redis-sentinel) start from.
// A failure is also published as a Warning Event (InitFailed) on the pod
// when the init container has an API client.
func Init(ctx context.Context, cfg config.Config, log zerolog.Logger, env InitEnv) error {
	redisx.RouteLibraryLogs(log)
	err := initPod(ctx, cfg, log, env)
	if err != nil && ctx.Err() == nil {
		reportFailure(cfg, "InitFailed", "Init", err, log)
	}
	return err
}

func initPod(ctx context.Context, cfg config.Config, log zerolog.Logger, env InitEnv) error {
	if err := writeExporterPassword(cfg); err != nil {
		return err
	}
	switch cfg.Mode {
	case config.ModeSentinel:
		return sentinel.Init(ctx, cfg, log)
	case config.ModeCluster:
		return cluster.Init(ctx, cfg, log, env.LookupHost)
	default:
		return fmt.Errorf("--mode (REDIS_HA_MODE) %q is not known: use sentinel or cluster", cfg.Mode)
	}
}

// writeExporterPassword writes redis_exporter's password file before the
// exporter container starts (containers start after the init containers).
func writeExporterPassword(cfg config.Config) error {
	f := exporterPasswordFile(cfg)
	if f.Path == "" {
		return nil
	}
	pw, err := secrets.ReadPasswordFile(cfg.PasswordFile)
	if err != nil {
		return err
	}
	return f.Write(pw)
}

func exporterPasswordFile(cfg config.Config) secrets.ExporterPasswordFile {
	return secrets.ExporterPasswordFile{Path: cfg.ExporterPasswordFile, Port: cfg.RedisPort}
}

// Run is the sidecar: it builds the shared parts, the mode, and runs the
// HTTP server, the password watcher and the mode's reconcile loop until ctx
// ends or one of them fails. A failure other than ctx ending is also
// published as a Warning Event (AgentFailed) on the pod.
func Run(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	redisx.RouteLibraryLogs(log)
	err := run(ctx, cfg, log)
	if err != nil && ctx.Err() == nil {
		reportFailure(cfg, "AgentFailed", "Run", err, log)
	}
	return err
}

func run(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	log = log.With().Str("pod", cfg.PodName).Str("mode", cfg.Mode).Logger()
	pw, err := secrets.NewPassword(cfg.PasswordFile)
	if err != nil {
		return err
	}
	if err := pw.MirrorTo(exporterPasswordFile(cfg)); err != nil {
		return err
	}
	tlsFiles, err := secrets.NewTLSFiles(cfg.TLS, []string{cfg.PodFQDN(cfg.Ordinal())}, clock.RealClock{})
	if err != nil {
		return err
	}
	aclFile, err := secrets.NewFile(cfg.ACLFile, "--acl-file (REDIS_HA_ACL_FILE)")
	if err != nil {
		return err
	}
	kube, election, err := kubeapi.NewClients(cfg.Kubeconfig, "redis-ha-agent/"+cfg.Version)
	if err != nil {
		return err
	}
	rec, stopEvents := kubeapi.NewRecorder(ctx, kube)
	defer stopEvents()
	deps := sidecar.Deps{
		Log:      log,
		Kube:     kube,
		Election: election,
		Events:   rec,
		Metrics:  metrics.New(cfg.Version, cfg.Mode),
		Password: pw,
		Rotation: rotation.New(pw.Get, clock.RealClock{}, cfg.PasswordRotationGrace, log),
		TLS:      tlsFiles,
		ACLFile:  aclFile,
		Clock:    clock.RealClock{},
	}
	tlsFiles.Observe(deps.Metrics)
	var mode sidecar.Mode
	switch cfg.Mode {
	case config.ModeSentinel:
		mode, err = sentinel.NewMode(cfg, deps)
	case config.ModeCluster:
		mode, err = cluster.NewMode(cfg, deps)
	default:
		err = fmt.Errorf("--mode (REDIS_HA_MODE) %q is not known: use sentinel or cluster", cfg.Mode)
	}
	if err != nil {
		return err
	}
	srv := sidecar.NewHTTPServer(cfg, deps, mode)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { return pw.Run(ctx, log, deps.Clock, cfg.ResyncInterval) })
	g.Go(func() error { return tlsFiles.Run(ctx, log, deps.Clock, cfg.ResyncInterval) })
	g.Go(func() error { return aclFile.Run(ctx, log, deps.Clock, cfg.ResyncInterval) })
	g.Go(func() error { return mode.Run(ctx) })
	return g.Wait()
}
