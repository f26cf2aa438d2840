package sentinel

import (
	"context"
	"strings"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

// announcedAddr is the address pod i is named by wherever the name reaches
// Sentinel and so its clients (replicaof, SENTINEL MONITOR, sentinel.conf):
// its peer name and the Redis port; with external access on, the address
// the pod announces itself (replica-announce-ip, the node it runs on) and
// its NodePort. A Sentinel promotes a replica at the address the replica
// announces, so naming a master the same way keeps one address per pod.
//
// A peer's announced host is asked from its redis-server; when it does not
// answer, or announces its peer name (it runs without external access,
// mid-rollout), this pod's own external host stands in: every node
// forwards every NodePort.
func announcedAddr(ctx context.Context, cfg config.Config, p sentinelPeers, i int, log zerolog.Logger) (string, int) {
	if !cfg.External.Enabled() {
		return p.Addr(i), cfg.RedisPort
	}
	port := cfg.External.RedisPortOf(i)
	if i == p.Self || p.Redis == nil {
		return cfg.External.Host, port
	}
	n := p.Redis(p.Addr(i))
	defer n.Close()
	c, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	h, err := n.ConfigGet(c, "replica-announce-ip")
	if host, ok := peerExternalHost(h, p.Addr(i)); err == nil && ok {
		return host, port
	}
	log.Info().Err(err).Int("peer", i).Str("announced", h).Str("host", cfg.External.Host).
		Msg("peer's external address unknown (its redis-server did not answer or announces no external address); naming it at this pod's external host, which forwards its NodePort too")
	return cfg.External.Host, port
}

// peerExternalHost accepts a peer's replica-announce-ip as its external
// host: an address or name, but not its peer name (no external access).
func peerExternalHost(announced, peerName string) (string, bool) {
	if strings.EqualFold(strings.TrimSuffix(announced, "."), strings.TrimSuffix(peerName, ".")) || !config.ValidHost(announced) {
		return "", false
	}
	return announced, true
}
