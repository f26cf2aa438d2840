package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/cluster"
)

// NodesconfCmd groups the nodes.conf tools.
type NodesconfCmd struct {
	Rewrite NodesconfRewriteCmd `cmd:"" help:"Rewrite myself and every peer's address in nodes.conf (drop-in for update-node.sh)."`
}

// NodesconfRewriteCmd points myself at the pod IP and every peer that has a
// hostname at the IP its name resolves to now, then optionally execs the
// rest of the command line. As a container command it replaces the seeds'
// update-node.sh: redis-ha-agent nodesconf rewrite -- redis-server /conf/redis.conf
type NodesconfRewriteCmd struct {
	NodesConf        string        `name:"nodes-conf" env:"REDIS_HA_NODES_CONF" default:"/data/nodes.conf" help:"Redis Cluster nodes.conf (cluster-config-file) to rewrite."`
	PodIP            string        `name:"pod-ip" env:"POD_IP" required:"" help:"This pod's IP, written for myself (downward API status.podIP)."`
	DNSTimeout       time.Duration `name:"dns-timeout" env:"REDIS_HA_DNS_TIMEOUT" default:"5s" help:"How long to wait for the peers' hostnames to resolve (all are looked up at once); a peer that does not resolve keeps its address."`
	MoveCorruptAside bool          `name:"move-corrupt-aside" env:"REDIS_HA_MOVE_CORRUPT_ASIDE" default:"false" help:"If nodes.conf is corrupt, rename it to nodes.conf.corrupt-<unix time> (never deleted) so redis-server starts as a new node, instead of failing."`

	Exec []string `arg:"" optional:"" passthrough:"" help:"Command to exec once the rewrite succeeded, after --, e.g. -- redis-server /conf/redis.conf. Without it the command just exits (initContainer)."`
}

// AfterApply drops the "--" that kong's passthrough keeps in front of the
// command.
func (c *NodesconfRewriteCmd) AfterApply() error {
	if len(c.Exec) > 0 && c.Exec[0] == "--" {
		c.Exec = c.Exec[1:]
	}
	return nil
}

func (c *NodesconfRewriteCmd) Run(g *Globals) error {
	if err := c.rewrite(g.Ctx, g.Log, g.LookupHost, clock.RealClock{}); err != nil {
		return err
	}
	if len(c.Exec) == 0 {
		return nil
	}
	path, err := exec.LookPath(c.Exec[0])
	if err != nil {
		return fmt.Errorf("nodes.conf is ready, but the command after -- cannot be run: %w; check the container command and PATH", err)
	}
	// Only the program name: arguments may carry secrets.
	g.Log.Info().Str("component", "nodesconf").Str("exec", path).Msg("starting the command after --")
	return fmt.Errorf("exec %s: %w", path, syscall.Exec(path, c.Exec, os.Environ()))
}

// rewrite is the whole command but the exec: the same rewrite as init's in
// cluster mode, waiting up to --dns-timeout for peers' names.
func (c *NodesconfRewriteCmd) rewrite(ctx context.Context, log zerolog.Logger, lookup cluster.LookupHost, clk clock.Clock) error {
	_, err := cluster.NodesConfRewrite{
		Path:             c.NodesConf,
		PodIP:            c.PodIP,
		Wait:             c.DNSTimeout,
		MoveCorruptAside: c.MoveCorruptAside,
		CorruptAdvice: fmt.Sprintf("pass --move-corrupt-aside (REDIS_HA_MOVE_CORRUPT_ASIDE=true) to rename it to %s.corrupt-<unix time> so redis-server starts as a new node that has to rejoin the cluster",
			filepath.Base(c.NodesConf)),
		LookupHost: lookup,
		Clock:      clk,
	}.Run(ctx, log.With().Str("component", "nodesconf").Logger())
	return err
}
