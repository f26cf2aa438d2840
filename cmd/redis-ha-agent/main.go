package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "redis-ha-agent:", err)
		os.Exit(1)
	}
}

// run parses args and runs the selected command until it ends or a signal
// arrives. It is main without the exit, so tests can drive the whole CLI.
func run(args []string, stdout, stderr io.Writer) error {
	var cli CLI
	exitCode := -1
	parser, err := kong.New(&cli,
		kong.Name("redis-ha-agent"),
		kong.Description("Makes Redis highly available on Kubernetes with no operator: runs as an init container and a sidecar in every pod of a StatefulSet."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exitCode = code; panic(exitSignal{}) }),
		kong.Vars{"version": Version},
	)
	if err != nil {
		return err
	}
	kctx, err := parseNoExit(parser, args, &exitCode)
	if err != nil {
		return err
	}
	if kctx == nil { // --help or --version printed and asked to exit
		if exitCode > 0 {
			return fmt.Errorf("exit status %d", exitCode)
		}
		return nil
	}
	log, err := newLogger(cli.LogFormat, cli.LogLevel, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return kctx.Run(&Globals{Ctx: ctx, Log: log, Stdout: stdout, LookupHost: net.DefaultResolver.LookupHost})
}

type exitSignal struct{}

// parseNoExit turns kong's exit-on-help into a nil context, so that only main
// ever exits the process.
func parseNoExit(p *kong.Kong, args []string, code *int) (kctx *kong.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(exitSignal); !ok {
				panic(r)
			}
			kctx, err = nil, nil
		}
	}()
	return p.Parse(args)
}

func newLogger(format, level string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("--log-level %q (LOG_LEVEL) is not a level: use trace, debug, info, warn or error", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	default:
		return zerolog.Nop(), fmt.Errorf("--log-format %q (LOG_FORMAT) is not known: use json or console", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// logTimeFormat puts milliseconds in every log line's time: a failover is
// read from the logs of three agents and three Sentinels (which log
// milliseconds too), and whole seconds cannot order its steps.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

func init() { zerolog.TimeFieldFormat = logTimeFormat }
