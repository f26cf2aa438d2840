package sentinel

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

// Scaling in sentinel mode.
//
// The agent counts "span" pods: every ordinal whose Sentinel may still vote.
// That is spec.replicas, or more while pods above spec.replicas still exist
// (a scale-down deletes them one by one, and a terminating pod's Sentinel
// keeps voting until its process stops). Majorities, the election, the
// Sentinel quorum and the peer list all use the span.
//
// Why the larger count: two groups of agents that count differently could
// each find "a majority" in disjoint sets of Sentinels (2 of {0,1,2} and 3 of
// {2,3,4} share only pod 2), and follow two masters. A majority of the larger
// count always includes a majority of the smaller one, so while one agent
// counts 5 and another still counts 3, what the first calls a majority the
// second does too; the reverse (2 of 3 while others need 3 of 5) only ever
// makes the cautious side wait. Scaling up, the span grows as soon as the
// agent reads the new spec.replicas: the existing pods alone still make a
// majority of it (3 of 5) before the new pods are Ready. Scaling down, the
// span shrinks only once the pods above spec.replicas are gone (deleted, not
// merely terminating).
//
// spec.replicas comes from the same cached reader as cluster mode
// (KubeTopology, at most one read per stsCacheTTL), plus a fresh read when
// the local Sentinel knows more Sentinels than the span: a scale-up is
// noticed within a hello period (2 s) of the first new Sentinel starting.

// replicaCounter reads spec.replicas; KubeTopology implements it.
type replicaCounter interface {
	Expected(ctx context.Context) (int, error)
	ExpectedNow(ctx context.Context) (int, error)
}

// sentinelScale is how the sidecar follows the StatefulSet's size; nil
// fields (tests) keep the count it started with.
type sentinelScale struct {
	count replicaCounter
	// podExists reads whether the pod of ordinal still exists (a
	// terminating pod exists).
	podExists func(ctx context.Context, ordinal int) (bool, error)
}

// freshReadEvery bounds the fresh spec.replicas reads a local Sentinel that
// knows more peers than the span may cause (until the stale ones are reset).
const freshReadEvery = 10 * time.Second

// nextSpan is the span after reading spec: spec when it grew or holds; while
// it shrank, the highest ordinal still existing plus one (never less than
// spec). exists answers for ordinals spec..cur-1; a missing answer (an
// API error) counts as existing, so the count stays conservative.
func nextSpan(cur, spec int, exists map[int]bool) int {
	if spec >= cur {
		return spec
	}
	for i := cur - 1; i >= spec; i-- {
		if e, ok := exists[i]; !ok || e {
			return i + 1
		}
	}
	return spec
}

// podCount is the span: the number of pods the pass counts; before the
// span is set (a mode built by hand in a unit test), peers.Pods.
func (m *sentinelMode) podCount() int {
	m.sizeMu.Lock()
	defer m.sizeMu.Unlock()
	return m.spanLocked()
}

func (m *sentinelMode) spanLocked() int {
	if m.span == 0 {
		return m.peers.Pods
	}
	return m.span
}

// peerSet is m.peers with the current span as Pods.
func (m *sentinelMode) peerSet() sentinelPeers {
	p := m.peers
	p.Pods = m.podCount()
	return p
}

// sentinelNodes is a snapshot of the Sentinel clients of the span, by
// ordinal. Clients are only ever added (closed by closeAll), so a snapshot
// stays usable after the span changes.
func (m *sentinelMode) sentinelNodes() []sentinelNode {
	m.sizeMu.Lock()
	defer m.sizeMu.Unlock()
	n := m.spanLocked()
	return m.sentinels[:n:n]
}

func (m *sentinelMode) localSentinel() sentinelNode {
	m.sizeMu.Lock()
	defer m.sizeMu.Unlock()
	return m.sentinels[m.peers.Self]
}

// setSpan changes the span, dialling Sentinel clients for new ordinals.
func (m *sentinelMode) setSpan(n int) {
	m.sizeMu.Lock()
	defer m.sizeMu.Unlock()
	for i := len(m.sentinels); i < n; i++ {
		m.sentinels = append(m.sentinels, m.peers.Sentinel(m.peers.Addr(i)))
	}
	m.span = n
}

// followScale reads spec.replicas (fresh when asked) and the pods above it,
// and moves the span. It returns the span before and after.
func (m *sentinelMode) followScale(ctx context.Context, fresh bool) (before, after int, err error) {
	before = m.podCount()
	if m.scale.count == nil {
		return before, before, nil
	}
	c, cancel := context.WithTimeout(ctx, m.cfg.RetryPeriod)
	defer cancel()
	read := m.scale.count.Expected
	if fresh {
		read = m.scale.count.ExpectedNow
	}
	spec, err := read(c)
	if err != nil {
		return before, before, fmt.Errorf("follow the StatefulSet's size: %w", err)
	}
	if spec < 1 {
		return before, before, nil
	}
	exists := map[int]bool{}
	if spec < before && m.scale.podExists != nil {
		for i := spec; i < before; i++ {
			if e, err := m.scale.podExists(c, i); err == nil {
				exists[i] = e
			}
		}
	}
	after = nextSpan(before, spec, exists)
	if after != before {
		m.setSpan(after)
		m.log.Info().Int("spec_replicas", spec).Int("from", before).Int("to", after).Msg("following the StatefulSet's size")
		m.event(corev1.EventTypeNormal, "ScaleFollowed", "Scale", "counting %d pods (was %d; spec.replicas %d): majorities, election and Sentinel quorum %d follow", after, before, spec, quorumOf(m.cfg, after))
	}
	return before, after, nil
}

// probeSpan, at start, counts the pods above spec.replicas that still exist
// (an agent restarted in the middle of a scale-down).
func probeSpan(ctx context.Context, spec int, exists func(ctx context.Context, ordinal int) (bool, error)) int {
	n := spec
	for i := spec; i < spec+64; i++ {
		e, err := exists(ctx, i)
		if err == nil && !e {
			break
		}
		n = i + 1
	}
	return n
}

// kubePodExists reads whether pod ordinal of the StatefulSet exists.
func kubePodExists(cfg config.Config, deps sidecar.Deps) func(ctx context.Context, ordinal int) (bool, error) {
	return func(ctx context.Context, ordinal int) (bool, error) {
		_, err := deps.Kube.CoreV1().Pods(cfg.Namespace).Get(ctx, cfg.PodNameOf(ordinal), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("get pod %s (needs RBAC get on pods): %w", cfg.PodNameOf(ordinal), err)
		}
		return true, nil
	}
}

// sentinelMembers is what a Sentinel knows about the master it monitors:
// SENTINEL MASTER's quorum and state, and the addresses SENTINEL SENTINELS
// and SENTINEL REPLICAS list.
type sentinelMembers struct {
	Quorum int
	// Flags is SENTINEL MASTER's flags ("master", "master,s_down", …);
	// FailoverState its failover-state ("" when not reported).
	Flags         string
	FailoverState string
	Sentinels     []memberAddr
	Replicas      []memberAddr
}

// memberAddr is a Sentinel's or a replica's address as a Sentinel lists
// it: with external access the port is what names the pod.
type memberAddr struct {
	Host string
	Port int
}

func (a memberAddr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// busy: a failover runs or may be about to (the master is seen down).
func (s sentinelMembers) busy() bool {
	if strings.Contains(s.Flags, "failover") || strings.Contains(s.Flags, "down") {
		return true
	}
	return s.FailoverState != "" && s.FailoverState != "none"
}

// resetInput is what the scale-down reset of the local Sentinel depends on.
type resetInput struct {
	Self int
	// Stale: hosts the local Sentinel lists (Sentinels or replicas) that
	// are not pods of the span; empty when it knows only live pods.
	Stale []string
	// Members read; Majority: the Sentinel majority names a master this
	// pass.
	Members  sentinelMembers
	Majority bool
	// StaleFor: how long Stale has been non-empty; SinceReset: since this
	// agent last reset its Sentinel (large when never).
	StaleFor, SinceReset time.Duration
}

// Reset timing. A reset Sentinel rediscovers the replicas from the master's
// INFO at once and the other Sentinels from their hello messages (every
// 2 s); while it knows no peers, its quorum (a majority of the span, never 1
// with more than one pod) keeps it from failing over alone. One pod at a
// time: pod i resets resetSettle + i*resetStagger after it first saw a stale
// entry, so even agents that noticed a few seconds apart do not reset
// together; resetMinInterval stops a reset loop when an entry is relearned.
const (
	resetSettle      = 5 * time.Second
	resetStagger     = 15 * time.Second
	resetMinInterval = 2 * time.Minute
)

// decideReset: SENTINEL RESET the local Sentinel when it still lists pods
// that are gone, after this pod's turn came, and never while a failover
// runs or could start.
func decideReset(in resetInput) (bool, string) {
	switch {
	case len(in.Stale) == 0:
		return false, ""
	case !in.Majority:
		return false, "no Sentinel majority names a master"
	case in.Members.busy():
		return false, fmt.Sprintf("the local Sentinel reports flags %q, failover-state %q", in.Members.Flags, in.Members.FailoverState)
	case in.SinceReset < resetMinInterval:
		return false, fmt.Sprintf("reset %s ago", in.SinceReset.Round(time.Second))
	}
	turn := resetSettle + time.Duration(in.Self)*resetStagger
	if in.StaleFor < turn {
		return false, fmt.Sprintf("waiting for this pod's turn (%s after the stale entries appeared)", turn)
	}
	return true, fmt.Sprintf("the local Sentinel still lists %s, which are not pods of the StatefulSet any more", strings.Join(in.Stale, ", "))
}

// staleHosts lists the addresses of ms that map to no ordinal of the span.
func staleHosts(p sentinelPeers, ms sentinelMembers) []string {
	var out []string
	for _, a := range ms.Sentinels {
		if p.sentinelOrdinalOf(a.Host, a.Port) < 0 {
			out = append(out, a.String())
		}
	}
	for _, a := range ms.Replicas {
		if p.ordinalOf(a.Host, a.Port) < 0 {
			out = append(out, a.String())
		}
	}
	return out
}

// tendLocalSentinel runs after each pass: it sets the local Sentinel's
// quorum to the rule for the span (the init's quorumOf), and resets it once
// the pods it still lists are gone. It asks for a fresh spec.replicas when
// the Sentinel knows more peers than the span.
//
// The quorum only decides when a master counts as down; who may fail it
// over is decided by a majority of the Sentinels each one knows, which the
// reset keeps honest. The price of the larger count: while new pods are
// not up yet (3→5: quorum 3 with three Sentinels running) a master lost in
// that window is failed over only once a new Sentinel runs.
func (m *sentinelMode) tendLocalSentinel(ctx context.Context, majority bool) error {
	s := m.localSentinel()
	c, cancel := context.WithTimeout(ctx, m.peers.Timeout)
	defer cancel()
	ms, ok, err := s.Members(c, m.cfg.MasterName)
	if err != nil || !ok {
		return err // not monitoring yet (fenced cold start): nothing to tend
	}
	p := m.peerSet()
	now := m.deps.Clock.Now()
	if len(ms.Sentinels) > p.Pods-1 && m.scale.count != nil && now.Sub(m.lastFreshRead) >= freshReadEvery {
		m.lastFreshRead = now
		if _, _, err := m.followScale(ctx, true); err != nil {
			return err
		}
		p = m.peerSet()
	}
	if q := quorumOf(m.cfg, p.Pods); ms.Quorum != q && !ms.busy() {
		if err := s.SetQuorum(c, m.cfg.MasterName, q); err != nil {
			return err
		}
		m.event(corev1.EventTypeNormal, "SentinelQuorumSet", "SentinelSet", "local Sentinel's quorum %d → %d for %d pods", ms.Quorum, q, p.Pods)
	}
	stale := staleHosts(p, ms)
	if len(stale) == 0 {
		m.staleSince = time.Time{}
		return nil
	}
	if m.staleSince.IsZero() {
		m.staleSince = now
	}
	since := 24 * time.Hour
	if !m.lastReset.IsZero() {
		since = now.Sub(m.lastReset)
	}
	do, why := decideReset(resetInput{Self: p.Self, Stale: stale, Members: ms, Majority: majority, StaleFor: now.Sub(m.staleSince), SinceReset: since})
	if !do {
		m.log.Debug().Strs("stale", stale).Str("why", why).Msg("local Sentinel not reset yet")
		return nil
	}
	if err := s.Reset(c, m.cfg.MasterName); err != nil {
		return err
	}
	m.lastReset, m.staleSince = now, time.Time{}
	m.event(corev1.EventTypeNormal, "SentinelReset", "SentinelReset", "SENTINEL RESET %s on the local Sentinel: %s; it relearns the live replicas and Sentinels within seconds", m.cfg.MasterName, why)
	return nil
}
