package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
	"github.com/redis-ha-agent/redis-ha-agent/nodesconf"
)

// peerResolveGrace is how long init waits for peers' DNS names before it
// keeps their old addresses: in a full restart the peers start at about the
// same time and get their DNS records within seconds, while with ordered pod
// management later pods do not exist yet and waiting longer would only delay
// this one. The run loop's CLUSTER MEET fixes whatever is left.
const peerResolveGrace = 10 * time.Second

// Init writes the redis.conf include and rewrites nodes.conf so that
// redis-server starts with its own and every peer's current address.
// lookup resolves peers' names; nil is the system resolver.
func Init(ctx context.Context, cfg config.Config, log zerolog.Logger, lookup LookupHost) error {
	log = log.With().Str("component", "cluster-init").Logger()
	pw, err := secrets.ReadPasswordFile(cfg.PasswordFile)
	if err != nil {
		return err
	}
	// Checked here, so bad files stop the pod before redis-server starts
	// with them.
	if _, err := secrets.NewTLSFiles(cfg.TLS, []string{cfg.PodFQDN(cfg.Ordinal())}, clock.RealClock{}); err != nil {
		return err
	}
	fileUsers, err := sidecar.ReadACLFile(cfg, acl.ModeCluster)
	if err != nil {
		return err
	}
	written, err := writeClusterInclude(cfg, pw, fileUsers)
	if err != nil {
		return err
	}
	log.Info().Str("file", cfg.RedisConfInclude).Bool("changed", written).Msg("redis.conf include written")
	res, err := NodesConfRewrite{
		Path:          cfg.NodesConf,
		PodIP:         cfg.PodIP,
		Wait:          min(cfg.InitTimeout, peerResolveGrace),
		CorruptAdvice: "if the node's cluster state is lost for good, move the file away so the node starts empty and the agent re-joins it",
		LookupHost:    lookup,
	}.Run(ctx, log)
	if err != nil {
		return err
	}
	return writeInitReport(cfg, res)
}

// initReport is what init did to nodes.conf, left beside the include for
// the sidecar, which has an API client, to publish as an Event.
type initReport struct {
	Changes    []string `json:"changes,omitempty"`
	Unresolved []string `json:"unresolved,omitempty"`
}

func initReportPath(cfg config.Config) string {
	return filepath.Join(filepath.Dir(cfg.RedisConfInclude), "cluster-init.json")
}

func writeInitReport(cfg config.Config, res nodesconf.Result) error {
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
	if _, err := atomicfile.Write(initReportPath(cfg), b, 0o644); err != nil {
		return fmt.Errorf("write init report: %w", err)
	}
	return nil
}

// readInitReport returns an Event note for the last init's rewrite, "" if
// it changed nothing.
func readInitReport(cfg config.Config) string {
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
func clusterInclude(cfg config.Config, password string) []byte {
	var b strings.Builder
	b.WriteString("# Written by redis-ha-agent init (cluster mode) at every pod start; edits are overwritten.\n")
	fmt.Fprintf(&b, "cluster-announce-hostname %s\n", cfg.PodFQDN(cfg.Ordinal()))
	// Announced explicitly so peers never learn a NATed or wrong source address.
	fmt.Fprintf(&b, "cluster-announce-ip %s\n", cfg.PodIP)
	b.WriteString("cluster-preferred-endpoint-type ip\n")
	if password != "" {
		b.WriteString(strings.Join(authLines(cfg.Users(), password), "\n") + "\n")
	}
	if cfg.TLS.Enabled() {
		b.WriteString(strings.Join(cfg.TLS.RedisLines(cfg.RedisPort, true), "\n") + "\n")
	}
	return []byte(b.String())
}

// authLines: the default user's password (requirepass) or, with the
// default user off, the line that disables it; masteruser and masterauth
// for replication; and a user line for each user the agent manages
// (agent/acl). Passwords are quoted, so any password survives.
func authLines(u acl.Users, password string) []string {
	q := secrets.QuoteConf(password)
	var lines []string
	if u.DefaultOff {
		lines = append(lines, acl.DefaultOffLine)
	} else {
		lines = append(lines, "requirepass "+q)
	}
	if r := u.Login(u.Replication); r != "" {
		lines = append(lines, "masteruser "+r)
	}
	lines = append(lines, "masterauth "+q)
	for _, m := range u.On(acl.ModeCluster, acl.Redis) {
		lines = append(lines, "user "+m.Name+" reset on "+secrets.QuoteConf(">"+password)+" "+m.Rules.Rules)
	}
	return lines
}

// writeClusterInclude writes the include with mode 0600: it holds the
// password.
func writeClusterInclude(cfg config.Config, password string, fileUsers []acl.FileUser) (bool, error) {
	dir := filepath.Dir(cfg.RedisConfInclude)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, fmt.Errorf("create directory %s for --redis-conf-include (REDIS_HA_REDIS_CONF_INCLUDE): %w", dir, err)
	}
	written, err := atomicfile.Write(cfg.RedisConfInclude, []byte(acl.ReplaceFileBlock(string(clusterInclude(cfg, password)), fileUsers)), 0o600)
	if err != nil {
		return false, fmt.Errorf("write --redis-conf-include (REDIS_HA_REDIS_CONF_INCLUDE): %w", err)
	}
	if err := os.Chmod(cfg.RedisConfInclude, 0o600); err != nil {
		return written, fmt.Errorf("restrict %s to mode 0600 (it holds the password): %w", cfg.RedisConfInclude, err)
	}
	return written, nil
}
