package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/nodesconf"
)

// peerResolveGrace is how long init waits for peers' DNS names before it
// keeps their old addresses: in a full restart the peers start at about the
// same time and get their DNS records within seconds, while with ordered pod
// management later pods do not exist yet and waiting longer would only delay
// this one. The run loop's CLUSTER MEET fixes whatever is left.
const peerResolveGrace = 10 * time.Second

// initCluster writes the redis.conf include and rewrites nodes.conf so that
// redis-server starts with its own and every peer's current address.
func initCluster(ctx context.Context, cfg Config, log zerolog.Logger) error {
	log = log.With().Str("component", "cluster-init").Logger()
	pw, err := ReadPasswordFile(cfg.PasswordFile)
	if err != nil {
		return err
	}
	written, err := writeClusterInclude(cfg, pw)
	if err != nil {
		return err
	}
	log.Info().Str("file", cfg.RedisConfInclude).Bool("changed", written).Msg("redis.conf include written")
	podIP, err := netip.ParseAddr(cfg.PodIP)
	if err != nil {
		return fmt.Errorf("--pod-ip (POD_IP) %q is not an IP address: set it from the downward API (fieldRef status.podIP)", cfg.PodIP)
	}
	grace := min(cfg.InitTimeout, peerResolveGrace)
	res, err := rewriteNodesConf(ctx, cfg.NodesConf, podIP, dnsResolver(ctx), grace, log)
	if err != nil {
		return err
	}
	logRewrite(log, cfg.NodesConf, res)
	return writeInitReport(cfg, res)
}

// initReport is what init did to nodes.conf, left beside the include for
// the sidecar, which has an API client, to publish as an Event.
type initReport struct {
	Changes    []string `json:"changes,omitempty"`
	Unresolved []string `json:"unresolved,omitempty"`
}

func initReportPath(cfg Config) string {
	return filepath.Join(filepath.Dir(cfg.RedisConfInclude), "cluster-init.json")
}

func writeInitReport(cfg Config, res nodesconf.Result) error {
	var r initReport
	for _, c := range res.Changes {
		name := c.Hostname
		if c.Myself {
			name = "myself"
		}
		r.Changes = append(r.Changes, fmt.Sprintf("%s %s -> %s", name, c.Old, c.New))
	}
	for _, u := range res.Unresolved {
		r.Unresolved = append(r.Unresolved, fmt.Sprintf("%s keeps %s", u.Hostname, u.Addr))
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := WriteFileAtomic(initReportPath(cfg), b, 0o644); err != nil {
		return fmt.Errorf("write init report: %w", err)
	}
	return nil
}

// readInitReport returns an Event note for the last init's rewrite, "" if
// it changed nothing.
func readInitReport(cfg Config) string {
	b, err := os.ReadFile(initReportPath(cfg))
	if err != nil {
		return ""
	}
	var r initReport
	if json.Unmarshal(b, &r) != nil || len(r.Changes)+len(r.Unresolved) == 0 {
		return ""
	}
	note := fmt.Sprintf("init rewrote %d address(es) in %s: %s", len(r.Changes), cfg.NodesConf, strings.Join(r.Changes, ", "))
	if len(r.Unresolved) > 0 {
		note += fmt.Sprintf("; %d peer(s) did not resolve and kept their address: %s", len(r.Unresolved), strings.Join(r.Unresolved, ", "))
	}
	return note
}

// clusterInclude renders the include redis.conf loads. The hostname is what
// makes nodes.conf carry a node -> pod mapping the next init can refresh
// addresses by; clients keep getting IPs (endpoint type ip) because many run
// where cluster DNS names do not resolve.
func clusterInclude(cfg Config, password string) []byte {
	var b strings.Builder
	b.WriteString("# Written by redis-ha-agent init (cluster mode) at every pod start; edits are overwritten.\n")
	fmt.Fprintf(&b, "cluster-announce-hostname %s\n", cfg.PodFQDN(cfg.Ordinal()))
	// Announced explicitly so peers never learn a NATed or wrong source address.
	fmt.Fprintf(&b, "cluster-announce-ip %s\n", cfg.PodIP)
	b.WriteString("cluster-preferred-endpoint-type ip\n")
	if password != "" {
		fmt.Fprintf(&b, "requirepass %s\nmasterauth %s\n", quoteConf(password), quoteConf(password))
	}
	return []byte(b.String())
}

// quoteConf quotes a value the way redis.conf's parser (sdssplitargs) reads
// it back, so any password survives.
func quoteConf(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeClusterInclude writes the include with mode 0600: it holds the
// password.
func writeClusterInclude(cfg Config, password string) (bool, error) {
	dir := filepath.Dir(cfg.RedisConfInclude)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, fmt.Errorf("create directory %s for --redis-conf-include (REDIS_HA_REDIS_CONF_INCLUDE): %w", dir, err)
	}
	written, err := WriteFileAtomic(cfg.RedisConfInclude, clusterInclude(cfg, password), 0o600)
	if err != nil {
		return false, fmt.Errorf("write --redis-conf-include (REDIS_HA_REDIS_CONF_INCLUDE): %w", err)
	}
	if err := os.Chmod(cfg.RedisConfInclude, 0o600); err != nil {
		return written, fmt.Errorf("restrict %s to mode 0600 (it holds the password): %w", cfg.RedisConfInclude, err)
	}
	return written, nil
}

// dnsResolver resolves peers through the pod's resolver, in the address
// family the peer had before.
func dnsResolver(ctx context.Context) nodesconf.Resolver {
	return func(host string, old netip.Addr) (netip.Addr, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return netip.Addr{}, err
		}
		for _, ip := range ips {
			if ip = ip.Unmap(); ip.Is4() == old.Unmap().Is4() || !old.IsValid() {
				return ip, nil
			}
		}
		if len(ips) > 0 {
			return ips[0].Unmap(), nil
		}
		return netip.Addr{}, fmt.Errorf("%s has no address", host)
	}
}

// rewriteNodesConf points myself at podIP and every named peer at its
// current address. A missing or empty file is a new node: nothing to do. A
// file that does not parse is kept untouched and the error names its line,
// so the pod stops in init while the rest of the cluster keeps serving.
// Peers that do not resolve (or would collide with another node's address)
// are retried for up to grace; after that the nodes that resolved are
// rewritten, the rest keep their address and are left to CLUSTER MEET.
func rewriteNodesConf(ctx context.Context, path string, podIP netip.Addr, resolve nodesconf.Resolver, grace time.Duration, log zerolog.Logger) (nodesconf.Result, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		log.Info().Str("file", path).Msg("no nodes.conf: a new node, nothing to rewrite")
		return nodesconf.Result{}, nil
	}
	if err != nil {
		return nodesconf.Result{}, fmt.Errorf("read --nodes-conf (REDIS_HA_NODES_CONF) %s: %w", path, err)
	}
	deadline := time.Now().Add(grace)
	for {
		f, err := nodesconf.Parse(data)
		if err != nil {
			return nodesconf.Result{}, fmt.Errorf("--nodes-conf (REDIS_HA_NODES_CONF) %s is not a valid nodes.conf: %w; the file is kept as it is. Restore it from a backup or fix that line; if the node's cluster state is lost for good, move the file away so the node starts empty and the agent re-joins it", path, err)
		}
		if len(f.Nodes) == 0 {
			return nodesconf.Result{}, nil
		}
		res, err := f.Rewrite(podIP, resolve)
		var conflict *nodesconf.ConflictError
		retry := errors.As(err, &conflict) || err == nil && len(res.Unresolved) > 0
		if retry && time.Now().Before(deadline) {
			log.Info().Err(err).Int("unresolved", len(res.Unresolved)).Str("file", path).Msg("some peers do not resolve to a distinct address yet; retrying")
			select {
			case <-ctx.Done():
				return nodesconf.Result{}, ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		if conflict != nil {
			// Leaving the file as it is is safe: redis-server announces the
			// pod IP from the include, and the run loop re-meets peers.
			log.Warn().Err(err).Str("file", path).Msg("nodes.conf left unchanged: two nodes would share an address")
			return nodesconf.Result{}, nil
		}
		if err != nil {
			return nodesconf.Result{}, fmt.Errorf("rewrite %s: %w", path, err)
		}
		if len(res.Changes) == 0 {
			return res, nil
		}
		if _, err := WriteFileAtomic(path, f.Bytes(), 0o644); err != nil {
			return res, fmt.Errorf("write rewritten --nodes-conf (REDIS_HA_NODES_CONF): %w", err)
		}
		return res, nil
	}
}

func logRewrite(log zerolog.Logger, path string, res nodesconf.Result) {
	for _, c := range res.Changes {
		log.Info().Str("file", path).Str("node", c.ID).Str("hostname", c.Hostname).Bool("myself", c.Myself).Str("old", c.Old.String()).Str("new", c.New.String()).Msg("nodes.conf address rewritten")
	}
	for _, u := range res.Unresolved {
		log.Warn().Str("file", path).Str("node", u.ID).Str("hostname", u.Hostname).Str("keeps", u.Addr.String()).AnErr("dns", u.Err).Msg("peer does not resolve; it keeps its address until the run loop meets it")
	}
	for _, id := range res.Unnamed {
		log.Warn().Str("file", path).Str("node", id).Msg("peer has no hostname in nodes.conf (announced by an older setup); its address cannot be refreshed")
	}
	log.Info().Str("file", path).Int("changed", len(res.Changes)).Int("unresolved", len(res.Unresolved)).Msg("nodes.conf checked")
}
