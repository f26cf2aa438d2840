package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/nodesconf"
)

// LookupHost has the shape of (*net.Resolver).LookupHost, so tests hand in
// a fake DNS while everything else runs as in production.
type LookupHost func(ctx context.Context, host string) ([]string, error)

// lookupRound bounds one round of lookups: a peer whose name does not
// answer within it is asked again in the next round, while the wait lasts.
const lookupRound = 2 * time.Second

// NodesConfRewrite is the one nodes.conf rewrite, shared by `init --mode
// cluster` and `nodesconf rewrite`: myself is pointed at the pod IP and every
// peer that has a hostname at the address its name resolves to now.
//
// A missing or empty file is a new node: nothing to do. A file that does not
// parse is kept and the error names its line, unless MoveCorruptAside. Peers
// that do not resolve, or would collide with another node's address, are
// asked again for up to Wait; after that the peers that resolved are
// rewritten and the rest keep their address. A collision that outlasts Wait
// leaves the file as it was, with a warning, and is not an error: failing
// would keep the pod out until the other node resolves, and with
// OrderedReady that node only starts once this one is ready.
type NodesConfRewrite struct {
	Path  string // nodes.conf
	PodIP string // written for myself
	// Wait is how long to retry peers that do not resolve (yet) to an
	// address of their own; 0 asks once.
	Wait time.Duration
	// MoveCorruptAside renames a corrupt file to <file>.corrupt-<unix
	// time> (never deleted) so redis-server starts as a new node.
	MoveCorruptAside bool
	// CorruptAdvice ends the error for a corrupt file: how this entry point
	// lets the node start empty.
	CorruptAdvice string
	// LookupHost resolves peers; nil is the system resolver.
	LookupHost LookupHost
	// Clock times the retries and names a moved-aside file; nil is the
	// real clock.
	Clock clock.Clock
}

// Run rewrites the file and says what it changed. log carries the caller's
// component.
func (r NodesConfRewrite) Run(ctx context.Context, log zerolog.Logger) (nodesconf.Result, error) {
	if r.LookupHost == nil {
		r.LookupHost = net.DefaultResolver.LookupHost
	}
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	log = log.With().Str("file", r.Path).Logger()
	podIP, err := netip.ParseAddr(r.PodIP)
	if err != nil {
		return nodesconf.Result{}, fmt.Errorf("--pod-ip (POD_IP) %q is not an IP address: set POD_IP from the downward API (fieldRef status.podIP)", r.PodIP)
	}
	data, err := os.ReadFile(r.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Info().Msg("no nodes.conf: a new node, nothing to rewrite")
		return nodesconf.Result{}, nil
	case err != nil:
		return nodesconf.Result{}, fmt.Errorf("read --nodes-conf (REDIS_HA_NODES_CONF) %s: %w", r.Path, err)
	case len(data) == 0:
		log.Info().Msg("nodes.conf is empty (Redis had not saved it yet): nothing to rewrite")
		return nodesconf.Result{}, nil
	}
	if _, err := nodesconf.Parse(data); err != nil {
		return nodesconf.Result{}, r.corrupt(log, err)
	}
	f, res, err := r.rewrite(ctx, log, data, podIP)
	var conflict *nodesconf.ConflictError
	if errors.As(err, &conflict) {
		// Leaving the file as it is is safe: redis-server announces the
		// pod IP (from the include, in init), and peers are met again.
		log.Warn().Err(err).Msg("nodes.conf left unchanged: two nodes would share an address")
		return nodesconf.Result{}, nil
	}
	if err != nil {
		return nodesconf.Result{}, fmt.Errorf("rewrite %s: %w; the file was left unchanged", r.Path, err)
	}
	logResult(log, res)
	if len(res.Changes) == 0 {
		log.Info().Int("unresolved", len(res.Unresolved)).Msg("every address is current: nodes.conf left as it was")
		return res, nil
	}
	if _, err := atomicfile.Write(r.Path, f.Bytes(), 0o644); err != nil {
		return res, fmt.Errorf("write the rewritten nodes.conf: %w; the old file is intact", err)
	}
	log.Info().Int("changed", len(res.Changes)).Int("unresolved", len(res.Unresolved)).Msg("nodes.conf rewritten")
	return res, nil
}

// rewrite resolves every peer at once, round after round while some do not
// resolve to an address of their own and the wait lasts, and returns the
// file as rewritten by the last round. Each round starts from data.
func (r NodesConfRewrite) rewrite(ctx context.Context, log zerolog.Logger, data []byte, podIP netip.Addr) (*nodesconf.File, nodesconf.Result, error) {
	deadline := r.Clock.Now().Add(r.Wait)
	for {
		f, err := nodesconf.Parse(data)
		if err != nil {
			return nil, nodesconf.Result{}, err
		}
		round := lookupRound
		if r.Wait > 0 {
			round = min(round, max(deadline.Sub(r.Clock.Now()), time.Millisecond))
		}
		ips := resolveAll(ctx, peerHosts(f), r.LookupHost, round)
		res, err := f.Rewrite(podIP, func(host string, old netip.Addr) (netip.Addr, error) {
			a := ips[host]
			if a.err != nil {
				return netip.Addr{}, a.err
			}
			return pickAddr(host, a.addrs, old)
		})
		var conflict *nodesconf.ConflictError
		retry := errors.As(err, &conflict) || err == nil && len(res.Unresolved) > 0
		if !retry || !r.Clock.Now().Before(deadline) {
			return f, res, err
		}
		log.Info().Err(err).Int("unresolved", len(res.Unresolved)).Msg("some peers do not resolve to a distinct address yet; retrying")
		select {
		case <-ctx.Done():
			return nil, nodesconf.Result{}, ctx.Err()
		case <-r.Clock.After(time.Second):
		}
	}
}

func logResult(log zerolog.Logger, res nodesconf.Result) {
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
}

// corrupt fails, or with MoveCorruptAside renames the file out of the way
// so redis-server starts as a new node. The file is never deleted.
func (r NodesConfRewrite) corrupt(log zerolog.Logger, perr error) error {
	if !r.MoveCorruptAside {
		return fmt.Errorf("--nodes-conf (REDIS_HA_NODES_CONF) %s is not a valid nodes.conf: %w. The file was left unchanged: inspect it or restore it from a backup, or %s",
			r.Path, perr, r.CorruptAdvice)
	}
	aside, err := moveAside(r.Path, r.Clock.Now())
	if err != nil {
		return fmt.Errorf("--nodes-conf (REDIS_HA_NODES_CONF) %s is not a valid nodes.conf (%w), and moving it aside failed: %w", r.Path, perr, err)
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

// peerHosts lists the peers' hostnames once each, in file order.
func peerHosts(f *nodesconf.File) []string {
	var hosts []string
	seen := make(map[string]bool)
	for _, n := range f.Nodes {
		if h := n.Addr.Hostname; h != "" && !n.Myself() && !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	return hosts
}

type lookupResult struct {
	addrs []string
	err   error
}

// resolveAll looks up every host at once, so a round waits at most one
// timeout however many peers there are. A zero timeout leaves the bound to
// ctx.
func resolveAll(ctx context.Context, hosts []string, lookup LookupHost, timeout time.Duration) map[string]lookupResult {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
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
		if !old.IsValid() || a.Is4() == old.Unmap().Is4() {
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
