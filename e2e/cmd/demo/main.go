// Command demo is `make demo`: a local Kubernetes cluster, redis-ha-agent
// deployed in sentinel and cluster mode from manifests/, masters deleted and
// killed under a writer, and what happened printed with timings. It exits
// non-zero when any check fails. See e2e/demo.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/demo"
	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

type cli struct {
	StateDir string `env:"LOCALKUBE_STATE_DIR" default:"/tmp/localkube" help:"State dir of the local cluster (logs, kubeconfig, control socket)."`

	Run   runCmd   `cmd:"" default:"withargs" help:"Run the demo (default)."`
	Serve serveCmd `cmd:"" name:"serve-cluster" hidden:"" help:"Run the cluster daemon (started by the demo itself)."`
}

type runCmd struct {
	Keep    bool          `help:"Leave the cluster running at the end and print how to reach it."`
	Timeout time.Duration `default:"15m" help:"Give up after this long (the demo takes about 4 minutes warm)."`
}

func (r *runCmd) Run(ctx context.Context, g *cli) error {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	// go-redis logs every refused dial; during a fault that is expected and
	// would bury the narration. The demo reports failures itself.
	redis.SetLogger(quietLogger{})
	return demo.Run(ctx, demo.Options{StateDir: g.StateDir, Keep: r.Keep, Out: os.Stdout})
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

type serveCmd struct{}

func (serveCmd) Run(ctx context.Context, g *cli) error {
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, NoColor: true, TimeFormat: time.RFC3339}).With().Timestamp().Logger()
	return localkube.RunDaemon(ctx, localkube.Options{StateDir: g.StateDir, Log: log})
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var c cli
	parser, err := kong.New(&c, kong.Name("demo"),
		kong.Description("redis-ha-agent demo: local cluster, both modes, faults with timings."),
		kong.UsageOnError(), kong.BindTo(ctx, (*context.Context)(nil)))
	if err != nil {
		return err
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		return err
	}
	return kctx.Run(&c)
}
