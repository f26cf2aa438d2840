package sentinel

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// watchTLS applies renewed TLS files to the local servers. The agent's own
// clients need nothing: they read the files at each new connection.
func (m *sentinelMode) watchTLS(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.deps.TLS.Changed():
			m.applyTLS(ctx)
		}
	}
}

// applyTLS makes redis-server reload its TLS files (any CONFIG SET of a
// tls-* parameter rebuilds its TLS context from the files, keeping open
// connections) and restarts the local Sentinel, which cannot reload them
// (redis-sentinel 7.0 and valkey-sentinel 8 have no CONFIG SET for tls-*;
// measured). The kubelet starts the Sentinel again within a second, with
// its state in sentinel.conf. Pods restart their Sentinels one after
// another (ordinal × twice --down-after apart, counted from when each
// kubelet updated the volume) and never during a failover, so a quorum
// stays up.
func (m *sentinelMode) applyTLS(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, 3*m.peers.Timeout)
	err := m.local.ConfigSet(c, "tls-cert-file", m.cfg.TLS.CertFile)
	cancel()
	if err != nil {
		m.event(corev1.EventTypeWarning, "TLSReloadFailed", "ConfigSet", "redis-server did not reload the renewed TLS files: %v; it keeps serving the previous certificate until the next change or a restart", err)
	} else {
		m.event(corev1.EventTypeNormal, "TLSReloaded", "ConfigSet", "redis-server reloaded the renewed TLS files")
	}
	if err := m.restartSentinel(ctx, time.Duration(m.peers.Self)*2*m.cfg.DownAfter); err != nil {
		m.event(corev1.EventTypeWarning, "TLSReloadFailed", "Shutdown", "the local Sentinel was not restarted to load the renewed TLS files: %v; it keeps the previous certificate until it restarts", err)
		return
	}
	m.event(corev1.EventTypeNormal, "TLSReloaded", "Shutdown", "the local Sentinel was stopped to load the renewed TLS files; its container restarts it")
}

// restartSentinel waits delay, then while no failover runs, stops the local
// Sentinel; it gives up after --failover-timeout of failovers.
func (m *sentinelMode) restartSentinel(ctx context.Context, delay time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-m.deps.Clock.After(delay):
	}
	s := m.localSentinel()
	deadline := m.deps.Clock.Now().Add(m.cfg.FailoverTimeout)
	for {
		c, cancel := context.WithTimeout(ctx, m.peers.Timeout)
		busy, err := s.FailingOver(c, m.cfg.MasterName)
		cancel()
		// No master monitored yet (a fenced cold start) is no failover.
		if err == nil && !busy || err != nil && !errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if m.deps.Clock.Now().After(deadline) {
			return fmt.Errorf("a failover kept running for --failover-timeout %s", m.cfg.FailoverTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.deps.Clock.After(time.Second):
		}
	}
	c, cancel := context.WithTimeout(ctx, m.peers.Timeout)
	defer cancel()
	return s.Shutdown(c)
}
