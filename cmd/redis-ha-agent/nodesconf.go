package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent"
	"github.com/redis-ha-agent/redis-ha-agent/nodesconf"
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

// lookupFunc has the shape of (*net.Resolver).LookupHost so tests can hand
// in a fake DNS while the rest of the command runs as in production.
type lookupFunc func(ctx context.Context, host string) ([]string, error)

// AfterApply drops the "--" that kong's passthrough keeps in front of the
// command.
func (c *NodesconfRewriteCmd) AfterApply() error {
	if len(c.Exec) > 0 && c.Exec[0] == "--" {
		c.Exec = c.Exec[1:]
	}
	return nil
}

func (c *NodesconfRewriteCmd) Run(g *Globals) error {
	if err := c.rewrite(g.Ctx, g.Log, net.DefaultResolver.LookupHost, time.Now); err != nil {
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

// rewrite is the whole command but the exec.
func (c *NodesconfRewriteCmd) rewrite(ctx context.Context, log zerolog.Logger, lookup lookupFunc, now func() time.Time) error {
	log = log.With().Str("component", "nodesconf").Str("file", c.NodesConf).Logger()
	podIP, err := netip.ParseAddr(c.PodIP)
	if err != nil {
		return fmt.Errorf("--pod-ip (POD_IP) %q is not an IP address: set POD_IP from the downward API (fieldRef status.podIP)", c.PodIP)
	}
	data, err := os.ReadFile(c.NodesConf)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Info().Msg("no nodes.conf: a new node, nothing to rewrite")
		return nil
	case err != nil:
		return fmt.Errorf("read --nodes-conf (REDIS_HA_NODES_CONF) %s: %w", c.NodesConf, err)
	case len(data) == 0:
		log.Info().Msg("nodes.conf is empty (Redis had not saved it yet): nothing to rewrite")
		return nil
	}
	f, err := nodesconf.Parse(data)
	if err != nil {
		return c.corrupt(log, err, now)
	}
	ips := resolveAll(ctx, f, lookup, c.DNSTimeout)
	res, err := f.Rewrite(podIP, func(host string, old netip.Addr) (netip.Addr, error) {
		r := ips[host]
		if r.err != nil {
			return netip.Addr{}, r.err
		}
		return pickAddr(host, r.addrs, old)
	})
	if err != nil {
		return fmt.Errorf("%s: %w; the file was left unchanged", c.NodesConf, err)
	}
	for _, ch := range res.Changes {
		log.Info().Str("node", ch.ID).Str("hostname", ch.Hostname).Bool("myself", ch.Myself).
			Stringer("old", ch.Old).Stringer("new", ch.New).Msg("address rewritten")
	}
	for _, u := range res.Unresolved {
		log.Warn().Str("node", u.ID).Str("hostname", u.Hostname).Stringer("kept", u.Addr).AnErr("error", u.Err).
			Msg("peer hostname did not resolve: it keeps its old address until gossip or a CLUSTER MEET corrects it")
	}
	if len(res.Unnamed) > 0 {
		log.Warn().Strs("nodes", res.Unnamed).
			Msg("peers without a hostname keep their address: set cluster-announce-hostname on every node so nodes.conf names its pod")
	}
	if len(res.Ghosts) > 0 {
		log.Warn().Strs("nodes", res.Ghosts).
			Msg("failed old node IDs share a hostname with a live node (a pod that lost its volume): left as they are; remove them with CLUSTER FORGET")
	}
	if len(res.Changes) == 0 {
		log.Info().Int("unresolved", len(res.Unresolved)).Msg("every address is current: nodes.conf left as it was")
		return nil
	}
	if _, err := agent.WriteFileAtomic(c.NodesConf, f.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write the rewritten nodes.conf: %w; the old file is intact", err)
	}
	log.Info().Int("changed", len(res.Changes)).Int("unresolved", len(res.Unresolved)).Msg("nodes.conf rewritten")
	return nil
}

// corrupt fails, or with --move-corrupt-aside renames the file out of the
// way so redis-server starts as a new node. The file is never deleted.
func (c *NodesconfRewriteCmd) corrupt(log zerolog.Logger, perr error, now func() time.Time) error {
	if !c.MoveCorruptAside {
		return fmt.Errorf("%s is not a valid nodes.conf: %w. The file was left unchanged: inspect it or restore it from a backup, "+
			"or pass --move-corrupt-aside (REDIS_HA_MOVE_CORRUPT_ASIDE=true) to rename it to %s.corrupt-<unix time> so redis-server starts as a new node that has to rejoin the cluster",
			c.NodesConf, perr, filepath.Base(c.NodesConf))
	}
	aside, err := moveAside(c.NodesConf, now())
	if err != nil {
		return fmt.Errorf("%s is not a valid nodes.conf (%w), and moving it aside failed: %w", c.NodesConf, perr, err)
	}
	log.Warn().AnErr("parse_error", perr).Str("moved_to", aside).
		Msg("corrupt nodes.conf moved aside: redis-server starts as a new node and must rejoin the cluster")
	return nil
}

// moveAside renames path to path.corrupt-<unix>, never replacing an
// existing file: link(2) fails instead of overwriting, unlike rename(2).
func moveAside(path string, now time.Time) (string, error) {
	base := fmt.Sprintf("%s.corrupt-%d", path, now.Unix())
	for i := 0; i < 100; i++ {
		aside := base
		if i > 0 {
			aside = fmt.Sprintf("%s.%d", base, i)
		}
		err := os.Link(path, aside)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			// Filesystems without hard links: rename, having checked
			// that the name is free.
			if _, serr := os.Lstat(aside); !errors.Is(serr, fs.ErrNotExist) {
				continue
			}
			if err := os.Rename(path, aside); err != nil {
				return "", fmt.Errorf("rename %s to %s: %w", path, aside, err)
			}
		} else if err := os.Remove(path); err != nil {
			return "", fmt.Errorf("remove the name %s (its data is kept as %s): %w", path, aside, err)
		}
		if d, err := os.Open(filepath.Dir(path)); err == nil {
			_ = d.Sync() // best effort: the data itself was never rewritten
			_ = d.Close()
		}
		return aside, nil
	}
	return "", fmt.Errorf("100 files named %s.* already exist: clean up old corrupt copies", base)
}

type lookupResult struct {
	addrs []string
	err   error
}

// resolveAll looks up every peer hostname at once, so the whole step waits
// at most one timeout however many peers there are.
func resolveAll(ctx context.Context, f *nodesconf.File, lookup lookupFunc, timeout time.Duration) map[string]lookupResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var hosts []string
	seen := make(map[string]bool)
	for _, n := range f.Nodes {
		if h := n.Addr.Hostname; h != "" && !n.Myself() && !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	results := make([]lookupResult, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			addrs, err := lookup(ctx, h)
			results[i] = lookupResult{addrs, err}
		})
	}
	wg.Wait()
	out := make(map[string]lookupResult, len(hosts))
	for i, h := range hosts {
		out[h] = results[i]
	}
	return out
}

// pickAddr takes the first answer of the old address's family (a pod keeps
// its family across restarts; a dual-stack name may list the other first),
// else the first answer.
func pickAddr(host string, addrs []string, old netip.Addr) (netip.Addr, error) {
	var first netip.Addr
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		a = a.Unmap()
		if !old.IsValid() || a.Is4() == old.Is4() {
			return a, nil
		}
		if !first.IsValid() {
			first = a
		}
	}
	if first.IsValid() {
		return first, nil
	}
	return netip.Addr{}, fmt.Errorf("%s resolved to no IP address (%v)", host, addrs)
}
