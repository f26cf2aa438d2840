package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// meetPeers sends CLUSTER MEET from this node to every expected peer it
// does not see connected at the peer's current address. That heals a full
// restart in which every IP changed, whatever nodes.conf said.
func (m *clusterMode) meetPeers(ctx context.Context, view []clusterNode, expected int) (int, error) {
	self := m.cfg.Ordinal()
	if self >= expected {
		return 0, nil // being scaled in: do not pull this node back in
	}
	local := m.local()
	myKeys, err := local.DBSize(ctx)
	if err != nil {
		return 0, fmt.Errorf("local DBSIZE: %w", err)
	}
	met := 0
	for i := 0; i < expected; i++ {
		if i == self {
			continue
		}
		p, ip, err := m.peer(ctx, i)
		if err != nil {
			m.log.Debug().Err(err).Int("peer", i).Msg("peer address unknown; not meeting it this pass")
			continue
		}
		pview, err := p.Nodes(ctx)
		if err != nil {
			m.log.Debug().Err(err).Int("peer", i).Msg("peer does not answer; not meeting it this pass")
			continue
		}
		pkeys, err := p.DBSize(ctx)
		if err != nil {
			continue
		}
		meet, why := meetDecision(view, myKeys, pview, pkeys, ip, m.cfg.RedisPort)
		if !meet {
			if strings.Contains(why, "different clusters") {
				m.log.Warn().Int("peer", i).Str("reason", why).Msg("not meeting peer")
			}
			continue
		}
		if err := local.Meet(ctx, ip, m.cfg.RedisPort); err != nil {
			return met, fmt.Errorf("CLUSTER MEET %s:%d (pod %d): %w", ip, m.cfg.RedisPort, i, err)
		}
		met++
		if m.env.Metrics != nil {
			m.env.Metrics.NodesMet.Inc()
		}
		note := fmt.Sprintf("met pod %s at %s:%d: %s", m.cfg.PodNameOf(i), ip, m.cfg.RedisPort, why)
		m.log.Info().Int("peer", i).Str("ip", ip).Str("reason", why).Msg("CLUSTER MEET sent")
		m.env.Event("Normal", "NodeMet", note)
	}
	return met, nil
}

// observe reads every pod's view for the coordinator's decision: the
// expected pods and any pod above them that the cluster still lists.
func (m *clusterMode) observe(ctx context.Context, expected int, extra ...int) (clusterState, error) {
	placement, err := m.env.Topology.Placement(ctx)
	if err != nil {
		m.log.Warn().Err(err).Msg("pod placement unknown; replicas are placed without it")
	}
	st := clusterState{Expected: expected, Replicas: m.cfg.ClusterReplicas, ScaleOutAs: m.cfg.ScaleOutAs, OrdinalOf: m.ordinalOf}
	seen := map[int]bool{}
	var observeOne func(i int)
	observeOne = func(i int) {
		if seen[i] {
			return
		}
		seen[i] = true
		p := podState{Ordinal: i, Hostname: m.cfg.PodFQDN(i), K8sNode: placement[i]}
		p.View, p.Keys, p.State, p.Err = m.observePod(ctx, i)
		st.Pods = append(st.Pods, p)
		for _, n := range p.View {
			if o, ok := m.ordinalOf(n.Hostname); ok && o >= expected && !n.has("fail") {
				observeOne(o)
			}
		}
	}
	for i := 0; i < expected; i++ {
		observeOne(i)
	}
	for _, i := range extra {
		observeOne(i)
	}
	sort.Slice(st.Pods, func(a, b int) bool { return st.Pods[a].Ordinal < st.Pods[b].Ordinal })
	return st, ctx.Err()
}

func (m *clusterMode) observePod(ctx context.Context, i int) ([]clusterNode, int64, string, error) {
	c, _, err := m.peer(ctx, i)
	if err != nil {
		return nil, 0, "", err
	}
	view, err := c.Nodes(ctx)
	if err != nil {
		return nil, 0, "", err
	}
	if _, ok := myself(view); !ok {
		return nil, 0, "", errors.New("CLUSTER NODES has no myself line")
	}
	keys, err := c.DBSize(ctx)
	if err != nil {
		return nil, 0, "", err
	}
	info, err := c.ClusterInfo(ctx)
	if err != nil {
		return nil, 0, "", err
	}
	return view, keys, info["cluster_state"], nil
}

// ordinalOf maps a pod FQDN of this StatefulSet to its ordinal.
func (m *clusterMode) ordinalOf(hostname string) (int, bool) {
	suffix := "." + m.cfg.Service + "." + m.cfg.Namespace + ".svc." + m.cfg.Domain
	name, ok := strings.CutSuffix(hostname, suffix)
	if !ok {
		return 0, false
	}
	num, ok := strings.CutPrefix(name, m.cfg.StatefulSet+"-")
	if !ok {
		return 0, false
	}
	var o int
	if _, err := fmt.Sscanf(num, "%d", &o); err != nil || fmt.Sprint(o) != num {
		return 0, false
	}
	return o, true
}

// execute carries out one decision.
func (m *clusterMode) execute(ctx context.Context, st clusterState, a clusterAction) error {
	switch a.Kind {
	case actAddSlots:
		x := newIndex(st)
		if x.covered == 0 {
			m.mu.Lock()
			m.creating = m.env.Clock.Now()
			m.mu.Unlock()
		}
		for _, o := range sortedKeys(a.AddSlots) {
			c, _, err := m.peer(ctx, o)
			if err != nil {
				return err
			}
			if err := c.AddSlots(ctx, a.AddSlots[o]); err != nil {
				return fmt.Errorf("CLUSTER ADDSLOTSRANGE %s on pod %d: %w", rangesString(a.AddSlots[o]), o, err)
			}
		}
		reason := "ClusterCreating"
		if x.covered > 0 {
			reason = "ClusterCreationResumed"
		}
		m.env.Event("Normal", reason, a.Reason)
	case actReplicate:
		for _, s := range a.Replicate {
			c, _, err := m.peer(ctx, s.Ordinal)
			if err != nil {
				return err
			}
			if err := c.Replicate(ctx, s.MasterID); err != nil {
				return fmt.Errorf("CLUSTER REPLICATE %s on pod %d: %w", s.MasterID, s.Ordinal, err)
			}
		}
		m.env.Event("Normal", "ReplicasAttached", a.Reason)
	case actMoveSlots:
		start := m.env.Clock.Now()
		if err := m.moveSlots(ctx, st, a.Moves); err != nil {
			return err
		}
		m.env.Event("Normal", "SlotsMoved", fmt.Sprintf("%s; took %s", a.Reason, m.env.Clock.Since(start).Round(time.Millisecond)))
	case actForget:
		for _, p := range st.Pods {
			if !p.up() {
				continue
			}
			c, _, err := m.peer(ctx, p.Ordinal)
			if err != nil {
				return err
			}
			for _, id := range a.Forget {
				if id == p.self().ID {
					continue
				}
				if err := c.Forget(ctx, id); err != nil {
					m.log.Warn().Err(err).Int("pod", p.Ordinal).Str("node", id).Msg("CLUSTER FORGET failed")
				}
			}
		}
		m.env.Event("Normal", "NodesForgotten", a.Reason)
	case actWait:
		m.log.Info().Str("reason", a.Reason).Msg("coordinator waiting")
	}
	return nil
}
