package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent"
	"github.com/redis-ha-agent/redis-ha-agent/agent/cluster"
	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// Globals is what every command's Run receives.
type Globals struct {
	Ctx    context.Context
	Log    zerolog.Logger
	Stdout io.Writer
	// LookupHost resolves peers' DNS names (net.DefaultResolver's in
	// production, a table in tests).
	LookupHost cluster.LookupHost
}

// CLI is the whole command line. Every flag can also be set by its
// environment variable, so manifests need no args beyond the command.
type CLI struct {
	LogFormat string `name:"log-format" env:"LOG_FORMAT" enum:"json,console" default:"json" help:"Log format: json or console."`
	LogLevel  string `name:"log-level" env:"LOG_LEVEL" default:"info" help:"Log level: trace, debug, info, warn, error."`

	Init         InitCmd         `cmd:"" help:"Decide this pod's role and write Redis/Sentinel config before redis-server starts (initContainer)."`
	Run          RunCmd          `cmd:"" help:"Keep roles, the Lease, labels and Sentinels in agreement; serve probes, status, metrics and preStop (sidecar)."`
	Status       StatusCmd       `cmd:"" help:"Print the StatefulSet's pods with their roles, offsets, lag and the Lease holder."`
	Nodesconf    NodesconfCmd    `cmd:"" name:"nodesconf" help:"Redis Cluster nodes.conf tools."`
	Sentinelconf SentinelconfCmd `cmd:"" name:"sentinelconf" help:"sentinel.conf tools."`
	Version      VersionCmd      `cmd:"" help:"Print the version."`
}

// InitCmd runs once in the initContainer.
type InitCmd struct {
	config.Config `embed:""`
}

func (c *InitCmd) Run(g *Globals) error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	c.Config.Version = Version
	return agent.Init(g.Ctx, c.Config, g.Log, agent.InitEnv{LookupHost: g.LookupHost})
}

// RunCmd is the long-running sidecar.
type RunCmd struct {
	config.Config `embed:""`
}

func (c *RunCmd) Run(g *Globals) error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	c.Config.Version = Version
	return agent.Run(g.Ctx, c.Config, g.Log)
}

// VersionCmd prints the build version.
type VersionCmd struct{}

func (VersionCmd) Run(g *Globals) error {
	_, err := fmt.Fprintf(g.Stdout, "redis-ha-agent %s %s %s/%s\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}
