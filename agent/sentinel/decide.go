package sentinel

import (
	"fmt"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// electionBlocked starts the reason of a plan whose election cannot pick a
// pod without dropping writes; the agent reports it as a Warning Event.
const electionBlocked = "election blocked: "

// Who made the master of record what it is, in order of precedence.
const (
	authoritySentinel = "sentinel-majority"
	authorityLease    = "lease"
	authorityElection = "election"
)

// nodeState is one Redis server's replication state, as its own agent
// reports it (local INFO, or a peer's /status).
type nodeState struct {
	Reported     bool   `json:"reported"`
	Role         string `json:"role"`
	ReplID       string `json:"replid"`
	ReplID2      string `json:"replid2"`
	Offset       int64  `json:"offset"`
	SecondOffset int64  `json:"second_offset"` // replid2 is valid for offsets below this
	Fenced       bool   `json:"fenced"`
}

// sentinelView is what one configured Sentinel answered.
type sentinelView struct {
	Reachable bool
	Master    int  // ordinal of the pod it names master; -1 for none or not a pod of ours
	named     bool // it names some master, perhaps not a pod of ours
}

// leaseView is the Lease as this agent judges it on its own clock.
type leaseView struct {
	Known  bool // read from the API server in this pass
	Holder int  // ordinal of the holder; -1 when free
	Live   bool // the record changed within its duration, on the local clock
}

// sentinelObservation is everything one reconcile pass saw.
type sentinelObservation struct {
	Self  int
	Pods  int // configured pods = configured Sentinels
	Local nodeState
	// LocalMaster is the ordinal the local replica replicates from; Self
	// for a fenced boot (replica of its own address), -1 when not a pod of ours.
	LocalMaster int
	Sentinels   []sentinelView
	// LocalSentinelMaster is what the Sentinel beside this Redis names:
	// -1 when it answers and monitors nothing (so it can be pointed at the
	// master), -2 when unreachable or naming a host that is not a pod.
	LocalSentinelMaster int
	// NamedMasterRole is the role the pod a Sentinel majority names reports
	// itself, read only when that is not this pod's master; "" when it
	// does not answer. LocalMasterRole is what the local replica's master
	// reports, read in the same case.
	NamedMasterRole string
	LocalMasterRole string
	// LeaseHolderRole is what the live Lease holder reports itself, read
	// only without a Sentinel majority when the local Sentinel monitors
	// nothing (so it is pointed only at a pod that is master) or when this
	// pod is a master too (so it is demoted only to a pod that is master).
	LeaseHolderRole string
	// LocalSentinelStaleFor is how long the local Sentinel has named
	// another pod than the Sentinel majority.
	LocalSentinelStaleFor time.Duration
	Lease                 leaseView
	Peers                 []nodeState // by ordinal; Peers[Self] is Local
	// LocalReplicasOnline counts the replicas a local master streams to;
	// LocalMasterFor is how long the local redis-server has been master.
	// LocalEngine and LocalRunID are what the local redis-server's INFO
	// server says (for the names only newer engines announce).
	LocalEngine         redisx.Engine
	LocalRunID          string
	LocalReplicasOnline int
	LocalMasterFor      time.Duration
	Now                 time.Time
	LastRenew           time.Time // local clock of this pod's last successful Lease write as holder
	RenewDeadline       time.Duration
	// ElectionFor is how long this agent has seen the election condition
	// (no Sentinel majority, no live Lease holder that is master).
	ElectionFor time.Duration
	// ElectionWait is --election-wait: how long an election waits for
	// every pod before a majority elects; 0 waits without limit.
	ElectionWait time.Duration
}

// sentinelPlan is what the pass should do. The executor runs the Lease write
// first and does the steps marked "after the Lease" only when it succeeded.
type sentinelPlan struct {
	Master    int    // master of record; -1 unknown
	Authority string // what makes Master the master of record
	Reason    string

	TakeLease    bool // acquire or take over (compare-and-swap)
	RenewLease   bool
	ReleaseLease bool
	Promote      bool // REPLICAOF NO ONE, after the Lease
	// PointSentinels: SENTINEL MONITOR this pod on every Sentinel that
	// monitors nothing, after the Lease (the election winner's duty).
	PointSentinels bool
	MonitorLocal   int // ordinal the local Sentinel should MONITOR; -1 none
	ReplicaOf      int // ordinal to REPLICAOF; -1 no change
	Fence          bool
	Unfence        bool
	// Failover: SENTINEL FAILOVER on the local Sentinel, for a master whose
	// redis-server restarted behind a fresher replica.
	Failover bool
	// Label is this pod's role label: master only after the Lease write
	// succeeded; "" leaves it alone (e.g. the API server is unreachable).
	Label string
}

func (p sentinelPlan) String() string {
	return fmt.Sprintf("master=%d authority=%q take=%t renew=%t release=%t promote=%t point=%t monitorLocal=%d replicaof=%d fence=%t unfence=%t failover=%t label=%q reason=%q",
		p.Master, p.Authority, p.TakeLease, p.RenewLease, p.ReleaseLease, p.Promote, p.PointSentinels, p.MonitorLocal, p.ReplicaOf, p.Fence, p.Unfence, p.Failover, p.Label, p.Reason)
}

// decideSentinel is the whole sentinel-mode policy. One authority at a time:
// a Sentinel majority wins; without one, a live Lease holder; without one,
// a cold-start election among a majority of reporting pods. Whatever the
// source, a master that cannot prove it is the master of record within the
// renew deadline fences itself.
func decideSentinel(o sentinelObservation) sentinelPlan {
	p := sentinelPlan{Master: -1, ReplicaOf: -1, MonitorLocal: -1, Label: redisx.RoleReplica}
	if !o.Local.Reported {
		p.Reason = "redis-server does not answer; not the master of record while it is down"
		p.ReleaseLease = o.Lease.Known && o.Lease.Holder == o.Self
		return p
	}
	if m, ok := sentinelMajority(o.Sentinels, o.Pods); ok {
		p.Master, p.Authority = m, authoritySentinel
		followSentinel(o, &p)
	} else if o.Lease.Known && o.Lease.Live && (o.Lease.Holder != o.Self || o.Local.Role == redisx.RoleMaster) {
		followLease(o, &p)
	} else if o.Lease.Known {
		elect(o, &p)
	} else {
		p.Label = "" // cannot reach the API server to change it anyway
		p.Reason = "no Sentinel majority knows a master and the Lease cannot be read; roles stay as they are"
	}
	fence(o, &p)
	return p
}

// sentinelMajority returns the pod that more than half of the configured
// Sentinels name as master.
func sentinelMajority(views []sentinelView, pods int) (int, bool) {
	votes := map[int]int{}
	for _, v := range views {
		if v.Reachable && v.Master >= 0 {
			votes[v.Master]++
		}
	}
	for m, n := range votes {
		if n > pods/2 {
			return m, true
		}
	}
	return -1, false
}

// sentinelStaleAfter is how long the local Sentinel may name another pod
// than the Sentinel majority before the agent points it at the majority's
// master: far longer than hello messages (every 2s) take to carry a
// failover's new configuration to a Sentinel that missed it.
const sentinelStaleAfter = 15 * time.Second

func followSentinel(o sentinelObservation, p *sentinelPlan) {
	m := p.Master
	if o.LocalSentinelMaster == -1 {
		p.MonitorLocal = m
	}
	// A Sentinel pointed at a pod that then lost the master role without a
	// failover (a stale Lease followed during a full restart, seen on the
	// e2e cluster) keeps naming it: the majority's hello messages carry
	// the same config epoch, so they never correct it, and its clients
	// are sent to a replica. Re-point it once the majority's master
	// answers as master.
	majorityMasterAnswers := (m == o.Self && o.Local.Role == redisx.RoleMaster) || (m != o.Self && o.NamedMasterRole == redisx.RoleMaster)
	if o.LocalSentinelMaster >= 0 && o.LocalSentinelMaster != m && o.LocalSentinelStaleFor >= sentinelStaleAfter && majorityMasterAnswers {
		p.MonitorLocal = m
	}
	if m == o.Self {
		switch {
		case o.Local.Role != redisx.RoleMaster && o.LocalMaster == o.Self:
			restartedMaster(o, p)
			return
		case o.Local.Role != redisx.RoleMaster:
			// Demoted (a switchover) while the Sentinels have not yet
			// announced the new master: they will.
			p.Reason = "a Sentinel majority still names this pod, now a replica of another; waiting for the Sentinels to announce the new master"
			return
		}
		p.TakeLease = o.Lease.Holder != o.Self || !o.Lease.Known
		p.RenewLease = !p.TakeLease
		p.Label = redisx.RoleMaster
		p.Unfence = o.Local.Fenced
		p.Reason = "a Sentinel majority names this pod master"
		return
	}
	if o.Lease.Known && o.Lease.Holder == o.Self {
		p.ReleaseLease = true
	}
	switch {
	case o.Local.Role == redisx.RoleMaster && o.NamedMasterRole != redisx.RoleMaster && o.Lease.Known && o.Lease.Live && o.Lease.Holder == o.Self:
		// A planned switchover: the old master handed this pod the Lease
		// the moment Sentinel promoted it, before the Sentinels announce
		// it. The pod they still name is no master, so their word is stale.
		p.Master, p.Authority = o.Self, authorityLease
		p.ReleaseLease = false
		p.RenewLease, p.Label, p.Unfence = true, redisx.RoleMaster, o.Local.Fenced
		p.Reason = fmt.Sprintf("this pod holds the Lease and is master; the Sentinel majority still names pod %d, which is no master (switchover in progress)", m)
	case o.Local.Role == redisx.RoleMaster && o.NamedMasterRole != redisx.RoleMaster:
		// Mid-failover the Sentinels that have not yet heard of the
		// promotion still name the old, dead master: demoting the
		// freshly promoted one to it would undo the failover.
		p.Reason = fmt.Sprintf("a Sentinel majority names pod %d master but it does not answer as master (failover in progress?); not demoting", m)
	case o.Local.Role == redisx.RoleMaster:
		p.ReplicaOf = m
		p.Unfence = o.Local.Fenced
		p.Reason = fmt.Sprintf("a Sentinel majority names pod %d master; demoting this one", m)
	case o.LocalMaster == o.Self || o.LocalMaster < 0:
		// Fenced boot (or an address that is not a pod): Sentinel cannot
		// know this replica yet, so point it at the master ourselves. Other
		// replicas are Sentinel's to reconfigure.
		p.ReplicaOf = m
		p.Reason = fmt.Sprintf("a Sentinel majority names pod %d master; joining it as replica", m)
	case o.LocalMaster != m && o.NamedMasterRole == redisx.RoleMaster && o.LocalMasterRole == redisx.RoleReplica:
		// Left replicating from the old master after a switchover whose
		// replica reconfiguration Sentinel did not finish (seen on the e2e
		// cluster): a chain Sentinel was slow to repair.
		p.ReplicaOf = m
		p.Reason = fmt.Sprintf("a Sentinel majority names pod %d master, and this replica follows pod %d, itself a replica; following the master", m, o.LocalMaster)
	default:
		p.Reason = fmt.Sprintf("a Sentinel majority names pod %d master", m)
	}
}

// restartedMaster: redis-server restarted within down-after (a container
// restart, no init) and booted fenced while the Sentinels still name this
// pod. A replica may hold writes this pod lost (AOF everysec, an older RDB);
// Sentinel on its own would wait down-after plus two INFO periods (~25s)
// before treating a "master" that reports replica as down. So: if a replica
// is at least as fresh, ask Sentinel to fail over to it now; if this pod is
// strictly the freshest, take the role back with the majority's blessing.
func restartedMaster(o sentinelObservation, p *sentinelPlan) {
	reported := 0
	for _, s := range o.Peers {
		if s.Reported {
			reported++
		}
	}
	w, why := freshest(o.Peers)
	if reported > o.Pods/2 && w == o.Self && strictlyFreshest(o.Peers, o.Self) {
		p.TakeLease, p.Promote, p.Label = true, true, redisx.RoleMaster
		p.Reason = "a Sentinel majority names this pod, which restarted as a replica and still has the freshest data (" + why + "); taking the role back"
		return
	}
	// Sentinel is the authority here and picks the best replica itself; it
	// refuses (NOGOODSLAVE) when there is none, and this pod waits.
	p.Failover = true
	p.Reason = "a Sentinel majority names this pod, which restarted as a replica and cannot show it is the freshest; asking Sentinel to fail over now"
}

func strictlyFreshest(peers []nodeState, self int) bool {
	for i, s := range peers {
		if i != self && s.Reported && s.Offset >= peers[self].Offset {
			return false
		}
	}
	return true
}

func followLease(o sentinelObservation, p *sentinelPlan) {
	h := o.Lease.Holder
	p.Master, p.Authority = h, authorityLease
	if h == o.Self { // and redis-server is master
		p.RenewLease = true
		p.Label = redisx.RoleMaster
		p.Unfence = o.Local.Fenced
		p.PointSentinels = replicasAttached(o)
		p.Reason = "this pod holds the Lease and no Sentinel majority knows a master"
		return
	}
	// A Lease left by a pod that stopped (a full restart) names a pod that
	// boots fenced: a Sentinel pointed at it would stay there after the
	// election picks another.
	if o.LocalSentinelMaster == -1 && o.LeaseHolderRole == redisx.RoleMaster {
		p.MonitorLocal = h
	}
	switch {
	case o.Local.Role == redisx.RoleMaster && o.LeaseHolderRole != redisx.RoleMaster:
		// A replica Sentinel has just promoted while the holder is frozen,
		// partitioned or dead: until the surviving Sentinels agree on the
		// promotion (hello messages, about 2s) there is no majority, and
		// demoting this pod to the silent holder would drop the writes it
		// has acknowledged since (seen on real nodes: freeze-master-20s
		// lost 49 WAIT 1-acknowledged writes this way). Keep the data;
		// fence() pauses its writes, as for any master without authority.
		p.Reason = fmt.Sprintf("pod %d holds the Lease but does not answer as master (a Sentinel failover not yet agreed?); not demoting this one", h)
	case o.Local.Role == redisx.RoleMaster:
		p.ReplicaOf = h
		p.Unfence = o.Local.Fenced
		p.Reason = fmt.Sprintf("pod %d holds the Lease and no Sentinel majority knows a master; demoting this one", h)
	case o.LocalMaster != h:
		p.ReplicaOf = h
		p.Reason = fmt.Sprintf("pod %d holds the Lease and no Sentinel majority knows a master; replicating from it", h)
	default:
		p.Reason = fmt.Sprintf("pod %d holds the Lease", h)
	}
}

// replicasAttached gates SENTINEL MONITOR after an election: a Sentinel
// learns a master's replicas from INFO, at MONITOR and then every 10s, and
// without them it can neither fail over nor meet its peers (hello messages
// travel through master and replicas). Monitoring once the replicas stream
// closes that 10s window; a master without replicas is monitored after 10s.
func replicasAttached(o sentinelObservation) bool {
	return o.LocalReplicasOnline > 0 || o.Pods == 1 || o.LocalMasterFor >= 10*time.Second
}

// elect runs the cold-start election: the Lease is free, expired, or held by
// this pod although its redis-server is not a master (a restart).
//
// It waits up to o.ElectionWait (--election-wait) for every pod to report
// before it settles for a majority. In a full restart the pods come back
// one by one, and the pod with the newest data (the last master, perhaps
// the only one that took writes while the others were unreachable) may be
// the slowest: a majority election without it would drop those writes. A
// pod that is gone for good delays the election by this much, or for ever
// with 0.
func elect(o sentinelObservation, p *sentinelPlan) {
	p.Authority = authorityElection
	var missing []string
	for i, s := range o.Peers {
		if !s.Reported {
			missing = append(missing, fmt.Sprint(i))
		}
	}
	reported := len(o.Peers) - len(missing)
	if reported <= o.Pods/2 {
		p.Reason = fmt.Sprintf("election waits: %d of %d pods reported their state, need more than %d", reported, o.Pods, o.Pods/2)
		return
	}
	if len(missing) > 0 && o.ElectionWait == 0 {
		p.Reason = fmt.Sprintf("election waits for every pod (--election-wait 0): pod %s has not reported its state (it may hold the newest data)", strings.Join(missing, ", "))
		return
	}
	if len(missing) > 0 && o.ElectionFor < o.ElectionWait {
		p.Reason = fmt.Sprintf("election waits up to %s for every pod (--election-wait %s): pod %s has not reported its state (it may hold the newest data)", o.ElectionWait-o.ElectionFor.Truncate(time.Second), o.ElectionWait, strings.Join(missing, ", "))
		return
	}
	w, why := freshest(o.Peers)
	if w < 0 {
		p.Reason = electionBlocked + why
		return
	}
	p.Master = w
	if w != o.Self {
		p.ReleaseLease = o.Lease.Holder == o.Self
		p.Reason = fmt.Sprintf("election: pod %d has the freshest data (%s); waiting for it to take the Lease", w, why)
		return
	}
	p.TakeLease = true
	p.Promote = o.Local.Role != redisx.RoleMaster
	p.PointSentinels = o.Local.Role == redisx.RoleMaster && replicasAttached(o)
	p.Label = redisx.RoleMaster
	p.Unfence = o.Local.Fenced
	p.Reason = "election: this pod has the freshest data (" + why + ")"
}

// freshest picks the reporting pod with the freshest data (lowest ordinal on
// ties) and checks that its history contains every other non-empty one: same
// replid and not behind, or the other's replid is its replid2, i.e. it was
// promoted from the other's history.
//
// A pod promoted from another's history wins even when the other went on
// past the switch: that is the old master's tail after a failover (at least
// Sentinel's hello messages, which reach the replication stream, and any
// writes it took before it was demoted). Redis itself drops that tail when
// the old master rejoins (PSYNC refuses an offset past second_repl_offset and
// a full resync follows); blocking here would instead leave a full restart
// taken just after a failover without a master until someone deletes data.
// The tail's size is named in the reason. Histories related by neither —
// two promotions from one history, or unrelated replids — block the election
// rather than silently dropping writes.
func freshest(peers []nodeState) (int, string) {
	peers = shareHistoryLinks(peers)
	best := -1
	for i, s := range peers {
		if s.Reported && (best < 0 || fresher(s, peers[best])) {
			best = i
		}
	}
	if best < 0 {
		return -1, "no pod reported"
	}
	w := peers[best]
	var tails []string
	for i, s := range peers {
		if i == best || !s.Reported || s.Offset == 0 {
			continue
		}
		sameHistory := s.ReplID == w.ReplID && (s.Offset <= w.Offset || w.Role == redisx.RoleMaster)
		if sameHistory {
			continue
		}
		if !promotedFrom(w, s) {
			return -1, fmt.Sprintf("pod %d (replid %s offset %d) and pod %d (replid %s offset %d) have diverged histories; pick the pod to keep and delete the other's data", best, w.ReplID, w.Offset, i, s.ReplID, s.Offset)
		}
		if s.Offset >= w.SecondOffset {
			tails = append(tails, fmt.Sprintf("pod %d's %d bytes past the failover at offset %d are dropped as Redis drops them when an old master rejoins", i, s.Offset-w.SecondOffset+1, w.SecondOffset-1))
		}
	}
	why := fmt.Sprintf("replid %s offset %d", w.ReplID, w.Offset)
	if len(tails) > 0 {
		why += "; " + strings.Join(tails, "; ")
	}
	return best, why
}

// shareHistoryLinks gives every pod of a history (a replid) the link that
// any of them reports to the history it was promoted from (replid2 and
// second_offset): the link belongs to the history, not to one pod. A
// replica of a promoted master that synced before the promotion, or any
// pod restarted since (Redis keeps replid2 in memory only), reports the
// replid without the link; judged alone against the old master's history
// it would block the election (CI on real nodes: a full restart after a
// failover found the promoted master's replica first, and no master came
// back). Returns a copy.
func shareHistoryLinks(peers []nodeState) []nodeState {
	out := append([]nodeState(nil), peers...)
	for i := range out {
		if !out[i].Reported || out[i].ReplID2 != "" {
			continue
		}
		for _, o := range peers {
			if o.Reported && o.ReplID == out[i].ReplID && o.ReplID2 != "" {
				out[i].ReplID2, out[i].SecondOffset = o.ReplID2, o.SecondOffset
				break
			}
		}
	}
	return out
}

// promotedFrom: a was promoted from b's history (a failover, or an election
// that promoted it): a's replid2 is b's replid.
func promotedFrom(a, b nodeState) bool {
	return a.ReplID2 != "" && a.ReplID2 == b.ReplID
}

// fresher: a pod promoted from another's history is the newer one whatever
// the offsets say. A running master is the source of its replid's history,
// so it beats every pod with the same replid — its replicas' offsets, read a
// moment after its own, can be a ping ahead, and on a tie the master must
// not lose to a lower ordinal. Otherwise the higher offset wins.
func fresher(a, b nodeState) bool {
	switch {
	case promotedFrom(a, b):
		return true
	case promotedFrom(b, a):
		return false
	case a.ReplID == b.ReplID && a.Role != b.Role:
		return a.Role == redisx.RoleMaster
	}
	return a.Offset > b.Offset
}

// fence decides whether a master keeps accepting writes. It must stop before
// its Lease could pass to another pod: RenewDeadline < LeaseDuration.
func fence(o sentinelObservation, p *sentinelPlan) {
	// A reachable Sentinel majority is an authority: this pod either is its
	// master, or is demoted, or waits mid-failover — never fenced.
	if o.Local.Role != redisx.RoleMaster || p.Master == o.Self || p.ReplicaOf >= 0 || p.Authority == authoritySentinel {
		return
	}
	if o.Local.Fenced {
		p.Unfence = false
		return
	}
	if o.Now.Sub(o.LastRenew) >= o.RenewDeadline {
		p.Fence = true
		p.Reason += fmt.Sprintf("; fencing: master without a Sentinel majority and without a Lease renewal for %s (deadline %s)", o.Now.Sub(o.LastRenew).Round(time.Millisecond), o.RenewDeadline)
	}
}
