package sentinel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

// sentinelMode is the sidecar of a sentinel-mode pod: it keeps Redis roles,
// the Lease, the role labels and the Sentinels in agreement.
type sentinelMode struct {
	cfg   config.Config
	deps  sidecar.Deps
	log   zerolog.Logger
	peers sentinelPeers
	lease *leaseStore

	local redisNode
	// announce gives the local server the names newer engines announce.
	announce *sidecar.Announcer
	// sizeMu guards span and sentinels. span is the number of pods counted
	// (see scale.go); sentinels holds a client per ordinal ever
	// counted ([Self] is the local Sentinel), so len(sentinels) >= span.
	sizeMu    sync.Mutex
	span      int
	sentinels []sentinelNode
	scale     sentinelScale
	// Loop-only state of tendLocalSentinel.
	lastFreshRead, staleSince, lastReset time.Time
	// peerStatus reads a peer agent's /status for the election.
	peerStatus func(ctx context.Context, ordinal int) (nodeState, error)
	// setLabel patches a pod's role label (the lead's SetPodLabel).
	setLabel func(ctx context.Context, pod, value string) error
	// listMasters names the pods that carry the master label.
	listMasters func(ctx context.Context) ([]string, error)
	// peerPods reads the other pods of the StatefulSet for the full-restart
	// check of preStop; nil skips the check.
	peerPods func(ctx context.Context) (map[int]peerPod, error)
	// terminating reads whether this pod is being deleted (selfPod), so a
	// preStop that did not hand over is undone when it is not; nil never
	// undoes.
	terminating func(ctx context.Context) (ok bool, reason string, err error)
	// includeMu serializes the run-time writers of the include: the
	// password rotation and the --acl-file users.
	includeMu sync.Mutex

	mu     sync.Mutex
	status SentinelStatus
	// fenced: this agent paused writes on its master. unpausedOnce: a pause
	// left by a previous agent process was lifted (it cannot be observed).
	fenced, unpausedOnce bool
	lastRenew            time.Time
	label                string // last label written; "" unknown
	switching            bool   // preStop in progress: the loop keeps hands off
	// stopping: preStop paused writes for the rest of this pod's life and
	// saved the position they stopped at; the loop keeps hands off and the
	// state file is not rewritten.
	stopping bool
	// pauseMu orders a pass's CLIENT UNPAUSE with preStop taking the pause
	// over: preStopOwnsPause is set under it when preStop starts, before
	// preStop pauses, and a pass unpauses only under it and only while it
	// is unset. A pass in flight when preStop starts (it checked switching
	// before) must not lift the pause preStop set after it (seen in an
	// integration test on a loaded machine: the first pass of a restarted
	// agent lifts a pause left by the previous process, and it lifted the
	// final pause of a preStop that had just begun).
	pauseMu          sync.Mutex
	preStopOwnsPause bool
	// stateMu orders state file writes, so a pass that read INFO before
	// the final pause cannot overwrite the final position.
	stateMu         sync.Mutex
	saved           replState
	masterSince     time.Time // local clock when redis-server became master
	electionSince   time.Time // local clock since the election condition holds
	lastFailoverAsk time.Time
	// sentinelStaleSince: local clock since the local Sentinel names
	// another pod than the Sentinel majority; zero while it agrees.
	sentinelStaleSince time.Time
	ref                runtime.Object
	// link times the loss of the local replica's master; failoverLost is
	// that loss once a Sentinel failover made this pod the master of
	// record, until the master label is written (failoverPending).
	link            linkWatch
	failoverLost    time.Time
	failoverPending bool
	// blocked: the reason of the blocked election last reported; "" when
	// the election is not blocked.
	blocked string
	// passes: when the loop last finished a pass, for /healthz.
	passes sidecar.PassMark
}

// SentinelStatus is /status in sentinel mode. Peers read Role, ReplID and
// Offset from it for the cold-start election.
type SentinelStatus struct {
	Mode         string `json:"mode"`
	Pod          string `json:"pod"`
	RedisUp      bool   `json:"redis_up"`
	Role         string `json:"role"` // master, replica, or "" when redis-server is down
	Fenced       bool   `json:"fenced"`
	ReplID       string `json:"replid"`
	ReplID2      string `json:"replid2,omitempty"`
	Offset       int64  `json:"offset"`
	SecondOffset int64  `json:"second_offset"`
	MasterLinkUp bool   `json:"master_link_up"`
	// Lag is replicationLag in bytes as of the last pass: 0 on a master,
	// null while unknown (master link down, master not answering).
	Lag            *int64    `json:"lag"`
	Loading        bool      `json:"loading"`
	LeaseHolder    string    `json:"lease_holder"`
	MasterOfRecord string    `json:"master_of_record"`
	Authority      string    `json:"authority"`
	LastDecision   string    `json:"last_decision"`
	ObservedAt     time.Time `json:"observed_at"`
	// Engine is what the local redis-server's INFO server names (engine,
	// engine_version); empty until it has answered.
	redisx.Engine
}

func (s SentinelStatus) nodeState() nodeState {
	return nodeState{Reported: s.RedisUp, Role: s.Role, ReplID: s.ReplID, ReplID2: s.ReplID2, Offset: s.Offset, SecondOffset: s.SecondOffset, Fenced: s.Fenced}
}

// NewMode builds sentinel mode on the real world: the pod count from the
// StatefulSet, the Lease, and clients for every peer's Redis and Sentinel.
func NewMode(cfg config.Config, deps sidecar.Deps) (sidecar.Mode, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topo := &sidecar.KubeTopology{Client: deps.Kube, Config: cfg}
	spec, err := topo.ExpectedNow(ctx)
	if err != nil {
		return nil, err
	}
	exists := kubePodExists(cfg, deps)
	// Pods above spec.replicas that still exist keep counting (a restart
	// in the middle of a scale-down).
	pods := probeSpan(ctx, spec, exists)
	if err := cfg.External.CheckSpan(pods); err != nil {
		return nil, err
	}
	_, port, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr (REDIS_HA_HTTP_ADDR) %q is not host:port: %w", cfg.HTTPAddr, err)
	}
	m := newSentinelModeWith(cfg, deps, defaultPeers(cfg, pods, deps.Rotation.Outgoing, deps.TLS, deps.Kube, deps.Log.With().Str("component", "sentinel").Logger()))
	m.peerStatus = httpPeerStatus(m.peers, port)
	m.scale = sentinelScale{count: topo, podExists: exists}
	m.peerPods = func(ctx context.Context) (map[int]peerPod, error) {
		return readPeerPods(ctx, deps.Kube, cfg, m.podCount())
	}
	return m, nil
}

// newSentinelModeWith wires a mode with the given way of reaching peers;
// integration tests pass loopback addresses.
func newSentinelModeWith(cfg config.Config, deps sidecar.Deps, peers sentinelPeers) *sentinelMode {
	m := &sentinelMode{
		cfg: cfg, deps: deps, peers: peers,
		log:    deps.Log.With().Str("component", "sentinel").Logger(),
		lease:  newLeaseStore(deps.Election, cfg.Namespace, cfg.LeaseName, cfg.PodName, deps.Clock),
		local:  peers.Redis(localHost(cfg, peers)),
		status: SentinelStatus{Mode: config.ModeSentinel, Pod: cfg.PodName},
		setLabel: func(ctx context.Context, pod, value string) error {
			return kubeapi.SetPodLabel(ctx, deps.Kube, cfg.Namespace, pod, cfg.RoleLabel, value)
		},
		listMasters: func(ctx context.Context) ([]string, error) { return podsLabelledMaster(ctx, deps.Kube, cfg) },
		terminating: sidecar.NewSelfPod(cfg, deps).Terminating,
		span:        peers.Pods,
		announce:    &sidecar.Announcer{Zone: cfg.Zone, PodName: cfg.PodName, Log: deps.Log.With().Str("component", "sentinel").Logger()},
	}
	for i := 0; i < peers.Pods; i++ {
		h := peers.Addr(i)
		if i == peers.Self {
			h = localHost(cfg, peers)
		}
		m.sentinels = append(m.sentinels, peers.Sentinel(h))
	}
	m.ref = &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: cfg.Namespace, Name: cfg.PodName}
	m.passes.Set(deps.Clock.Now()) // the loop's first pass is due now
	return m
}

// localHost is how the agent reaches its own pod's redis-server and
// Sentinel: the pod IP when known, so liveness and fencing never depend on
// cluster DNS (on the e2e cluster its own FQDN failed to resolve during an
// API server outage); else its peer address.
func localHost(cfg config.Config, peers sentinelPeers) string {
	if cfg.PodIP != "" {
		return cfg.PodIP
	}
	return peers.Addr(peers.Self)
}

// Live: redis-server answers (LOADING counts as alive).
func (m *sentinelMode) Live(ctx context.Context) error { return m.local.Ping(ctx) }

// Healthy: the agent itself works, its reconcile loop finishing passes. It
// asks neither redis-server nor the API server: their outages are what the
// agent must keep running through.
func (m *sentinelMode) Healthy(context.Context) error {
	return sidecar.LoopHealth(m.deps.Clock.Now(), m.passes.Get(), sidecar.StallLimit(m.cfg))
}

// Ready: a master only while it is the master of record and writable; a
// replica only with its master link up and not loading.
func (m *sentinelMode) Ready(ctx context.Context) error {
	r, err := m.local.Replication(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	st, fenced, switching, stopping := m.status, m.fenced, m.switching, m.stopping
	m.mu.Unlock()
	if r.Loading {
		return errors.New("redis-server is loading its dataset")
	}
	if r.Role == redisx.RoleReplica {
		if !r.LinkUp {
			return fmt.Errorf("replica of %s:%d with the master link down", r.MasterHost, r.MasterPort)
		}
		return nil
	}
	switch {
	case fenced:
		return errors.New("master is fenced (writes paused): it can neither renew the Lease nor reach a Sentinel majority")
	case switching:
		return errors.New("master is handing over (preStop switchover)")
	case stopping:
		return errors.New("master is stopping: preStop paused its writes for the rest of the pod's life")
	case st.MasterOfRecord != m.cfg.PodName:
		return fmt.Errorf("redis-server is a master but not the master of record (that is %q, by %s)", st.MasterOfRecord, st.Authority)
	}
	return nil
}

// Status is the last pass's view with the replication state read now, so a
// peer's election compares current offsets.
func (m *sentinelMode) Status(ctx context.Context) any {
	// Short: /status must answer (fenced, role) even while a switchover
	// keeps redis-server busy; the last pass's values stand in.
	c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	r, err := m.local.Replication(c)
	m.mu.Lock()
	st := m.status
	// Writes are paused during a switchover and once stopping too: not
	// writable.
	st.Fenced = m.fenced || m.switching || m.stopping
	m.mu.Unlock()
	if err != nil {
		// Not a candidate for an election while it cannot be read now.
		st.RedisUp = false
		return st
	}
	st.RedisUp = !r.Loading
	n := m.effective(r)
	st.Role, st.ReplID, st.ReplID2, st.Offset, st.SecondOffset = n.Role, n.ReplID, n.ReplID2, n.Offset, n.SecondOffset
	st.MasterLinkUp, st.Loading = r.LinkUp, r.Loading
	if r.Engine.Name != "" {
		st.Engine = r.Engine
	}
	return st
}

// peerPod is another pod of the StatefulSet as the API server lists it.
type peerPod struct {
	UID      types.UID // "" when the pod does not exist
	Deleting bool      // it has a deletion timestamp
}

// readPeerPods reads every pod of the StatefulSet but this one.
func readPeerPods(ctx context.Context, kube kubeapi.Clients, cfg config.Config, pods int) (map[int]peerPod, error) {
	out := map[int]peerPod{}
	for i := 0; i < pods; i++ {
		if i == cfg.Ordinal() {
			continue
		}
		p, err := kube.CoreV1().Pods(cfg.Namespace).Get(ctx, cfg.PodNameOf(i), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			out[i] = peerPod{}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get pod %s (needs RBAC get on pods): %w", cfg.PodNameOf(i), err)
		}
		out[i] = peerPod{UID: p.UID, Deleting: p.DeletionTimestamp != nil}
	}
	return out, nil
}

// allPeersStopping: every other pod is being deleted, gone, or already
// replaced by a new pod (another UID) since first was read — a full
// restart, in which no replica is left to hand the master role to.
func allPeersStopping(first, now map[int]peerPod) bool {
	for i, p := range now {
		if p.UID == "" || p.Deleting {
			continue
		}
		if f, ok := first[i]; ok && f.UID != "" && f.UID != p.UID {
			continue
		}
		return false
	}
	return true
}
