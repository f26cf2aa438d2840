package sentinel

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// peerNameGrace is how long a peer's DNS name may fail to resolve before it
// is reported: a recreated pod is published again within seconds.
const peerNameGrace = 30 * time.Second

// peerNames tracks which peers' DNS names fail to resolve and since when.
// It reports a name once it has failed for longer than the grace, and
// again once it resolves.
type peerNames struct {
	grace    time.Duration
	since    map[string]time.Time // first failure of the current outage
	reported map[string]bool
}

func newPeerNames(grace time.Duration) *peerNames {
	return &peerNames{grace: grace, since: map[string]time.Time{}, reported: map[string]bool{}}
}

// observe records one lookup of host and returns what changed: lost is
// true when the name has failed for longer than the grace (reported once
// per outage), back when a reported name resolves again.
func (p *peerNames) observe(host string, err error, now time.Time) (lost, back bool) {
	if err == nil {
		back = p.reported[host]
		delete(p.since, host)
		delete(p.reported, host)
		return false, back
	}
	first, ok := p.since[host]
	if !ok {
		p.since[host] = now
		first = now
	}
	if !p.reported[host] && now.Sub(first) >= p.grace {
		p.reported[host] = true
		return true, false
	}
	return false, false
}

// watchPeerNames resolves every peer's DNS name each interval and reports a
// name that stays unresolvable as a Warning Event: Redis replication and
// Sentinel reach peers by these names, so without them a replica cannot
// follow its master and Sentinel cannot reach the pods.
func (m *sentinelMode) watchPeerNames(ctx context.Context, interval time.Duration) {
	names := newPeerNames(peerNameGrace)
	t := m.deps.Clock.NewTicker(interval)
	defer t.Stop()
	for {
		for i := 0; i < m.podCount(); i++ {
			if i == m.peers.Self {
				continue
			}
			host := m.peers.Addr(i)
			c, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := m.peers.Resolve(c, host)
			cancel()
			if ctx.Err() != nil {
				return
			}
			lost, back := names.observe(host, err, m.deps.Clock.Now())
			switch {
			case lost:
				m.warn("PeerUnresolvable", "ResolvePeer", "peer %s's DNS name %s has not resolved for %s (%v): the headless Service --headless-service (REDIS_HA_HEADLESS_SERVICE) %q must exist in namespace %s, select the pods and set publishNotReadyAddresses: true; replication and Sentinel reach peers by this name",
					m.cfg.PodNameOf(i), host, peerNameGrace, err, m.cfg.Service, m.cfg.Namespace)
			case back:
				m.event(corev1.EventTypeNormal, "PeerResolvable", "ResolvePeer", "peer %s's DNS name %s resolves again", m.cfg.PodNameOf(i), host)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// warn logs at warn level and records a Warning Event.
func (m *sentinelMode) warn(reason, action, note string, args ...any) {
	m.log.Warn().Str("event", reason).Msgf(note, args...)
	if m.deps.Events != nil {
		m.deps.Events.Eventf(m.ref, nil, corev1.EventTypeWarning, reason, action, note, args...)
	}
}
