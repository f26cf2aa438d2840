package sentinel

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// obs3 is pod `self` of three: its Redis answers with role, every Sentinel
// unreachable, the Lease known and free, renewed just now.
// testElectionWait is --election-wait's default.
const testElectionWait = 30 * time.Second

func obs3(self int, role string) sentinelObservation {
	local := nodeState{Reported: true, Role: role, ReplID: "r1", Offset: 100}
	o := sentinelObservation{
		Self: self, Pods: 3, Local: local, LocalMaster: -1,
		Sentinels:           make([]sentinelView, 3),
		LocalSentinelMaster: -1,
		Lease:               leaseView{Known: true, Holder: -1},
		Peers:               make([]nodeState, 3),
		Now:                 t0, LastRenew: t0, RenewDeadline: 10 * time.Second,
		ElectionWait: testElectionWait,
	}
	o.Peers[self] = local
	return o
}

func withSentinels(o sentinelObservation, masters ...int) sentinelObservation {
	for i, m := range masters {
		o.Sentinels[i] = sentinelView{Reachable: m != -2, Master: max(m, -1)}
	}
	return o
}

func plan(master int, authority string, f func(*sentinelPlan)) sentinelPlan {
	p := sentinelPlan{Master: master, Authority: authority, ReplicaOf: -1, MonitorLocal: -1, Label: redisx.RoleReplica}
	if f != nil {
		f(&p)
	}
	return p
}

func TestDecideSentinelFollow(t *testing.T) {
	cases := map[string]struct {
		reason string
		obs    sentinelObservation
		want   sentinelPlan
	}{
		"MajorityNamesSelfTakesLease": {
			reason: "the pod a Sentinel majority names master takes the Lease over from a live holder and labels itself",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(1, redisx.RoleMaster), 1, 1, -2)
				o.Lease = leaseView{Known: true, Holder: 0, Live: true}
				o.LocalSentinelMaster = 1
				return o
			}(),
			want: plan(1, authoritySentinel, func(p *sentinelPlan) { p.TakeLease, p.Label = true, redisx.RoleMaster }),
		},
		"MajorityNamesSelfRenews": {
			reason: "the holder named by a majority renews",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(0, redisx.RoleMaster), 0, 0, 0)
				o.Lease = leaseView{Known: true, Holder: 0, Live: true}
				o.LocalSentinelMaster = 0
				return o
			}(),
			want: plan(0, authoritySentinel, func(p *sentinelPlan) { p.RenewLease, p.Label = true, redisx.RoleMaster }),
		},
		"MajorityWithAPIDownUnfences": {
			reason: "API server unreachable but a Sentinel majority names this master: keep serving, never fence",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(0, redisx.RoleMaster), 0, 0, -2)
				o.Lease = leaseView{}
				o.Local.Fenced = true
				o.LocalSentinelMaster = 0
				o.Now = t0.Add(time.Minute)
				return o
			}(),
			want: plan(0, authoritySentinel, func(p *sentinelPlan) { p.TakeLease, p.Label, p.Unfence = true, redisx.RoleMaster, true }),
		},
		"MajorityNamesOtherDemotesMaster": {
			reason: "an old master that a Sentinel majority no longer names demotes itself and releases its Lease",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(0, redisx.RoleMaster), 2, 2, -2)
				o.Lease = leaseView{Known: true, Holder: 0, Live: true}
				o.LocalSentinelMaster = 2
				o.NamedMasterRole = redisx.RoleMaster
				return o
			}(),
			want: plan(2, authoritySentinel, func(p *sentinelPlan) { p.ReplicaOf, p.ReleaseLease = 2, true }),
		},
		"HandedOverLeaseBeatsStaleMajority": {
			reason: "planned switchover: the old master handed this pod the Lease; the majority still names the old one, now a replica",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(1, redisx.RoleMaster), 0, 0, 0)
				o.Lease = leaseView{Known: true, Holder: 1, Live: true}
				o.LocalSentinelMaster = 0
				o.NamedMasterRole = redisx.RoleReplica
				return o
			}(),
			want: plan(1, authorityLease, func(p *sentinelPlan) { p.RenewLease, p.Label = true, redisx.RoleMaster }),
		},
		"MidFailoverNoDemoteNoFence": {
			reason: "just promoted by the Sentinel leader while two Sentinels still name the dead old master: neither demote nor fence",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(1, redisx.RoleMaster), 0, 1, 0)
				o.Lease = leaseView{Known: true, Holder: 0, Live: true}
				o.LocalSentinelMaster = 1
				o.LastRenew = time.Time{}
				return o
			}(),
			want: plan(0, authoritySentinel, nil),
		},
		"MinorityDoesNotCount": {
			reason: "one Sentinel of three naming another pod is no majority: the live Lease holder stays master",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(0, redisx.RoleMaster), 2, -2, -2)
				o.Lease = leaseView{Known: true, Holder: 0, Live: true}
				o.LocalSentinelMaster = 2
				o.LocalReplicasOnline = 2
				return o
			}(),
			want: plan(0, authorityLease, func(p *sentinelPlan) { p.RenewLease, p.Label, p.PointSentinels = true, redisx.RoleMaster, true }),
		},
		"HolderWaitsForReplicasBeforeMonitor": {
			reason: "an election winner without replicas yet does not point the Sentinels: they would not learn the replicas for 10s",
			obs: func() sentinelObservation {
				o := obs3(0, redisx.RoleMaster)
				o.Lease = leaseView{Known: true, Holder: 0, Live: true}
				o.LocalMasterFor = 3 * time.Second
				return o
			}(),
			want: plan(0, authorityLease, func(p *sentinelPlan) { p.RenewLease, p.Label = true, redisx.RoleMaster }),
		},
		"SplitVoteIsNoMajority": {
			reason: "Sentinels split between two pods: no majority, the Lease decides",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(2, redisx.RoleReplica), 0, 1, -1)
				o.Lease = leaseView{Known: true, Holder: 1, Live: true}
				o.LeaseHolderRole = redisx.RoleMaster
				o.LocalMaster = 1
				o.LocalSentinelMaster = -1
				return o
			}(),
			want: plan(1, authorityLease, func(p *sentinelPlan) { p.MonitorLocal = 1 }),
		},
		"StaleLeaseHolderNotMonitored": {
			reason: "a full restart: the Lease still names a pod that booted fenced; the empty Sentinel is not pointed at a replica it would stay on after the election",
			obs: func() sentinelObservation {
				o := obs3(2, redisx.RoleReplica)
				o.Lease = leaseView{Known: true, Holder: 0, Live: true}
				o.LeaseHolderRole = redisx.RoleReplica
				o.LocalMaster = 2
				return o
			}(),
			want: plan(0, authorityLease, func(p *sentinelPlan) { p.ReplicaOf = 0 }),
		},
		"StaleLocalSentinelRepointed": {
			reason: "the local Sentinel has named pod 0, no master, for longer than hello messages take, while the majority names pod 1, which answers as master: it is pointed at pod 1",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(2, redisx.RoleReplica), 1, 1, 0)
				o.LocalMaster = 1
				o.LocalSentinelMaster = 0
				o.LocalSentinelStaleFor = 20 * time.Second
				o.NamedMasterRole = redisx.RoleMaster
				return o
			}(),
			want: plan(1, authoritySentinel, func(p *sentinelPlan) { p.MonitorLocal = 1 }),
		},
		"LaggingLocalSentinelLeftToHellos": {
			reason: "right after a failover the local Sentinel may name the old master for a few seconds: hello messages correct it, the agent does not",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(2, redisx.RoleReplica), 1, 1, 0)
				o.LocalMaster = 1
				o.LocalSentinelMaster = 0
				o.LocalSentinelStaleFor = 3 * time.Second
				o.NamedMasterRole = redisx.RoleMaster
				return o
			}(),
			want: plan(1, authoritySentinel, nil),
		},
		"StaleLocalSentinelKeptWhileMajorityMasterSilent": {
			reason: "the majority's master does not answer as master (a failover in progress): the local Sentinel is not re-pointed",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(2, redisx.RoleReplica), 1, 1, 0)
				o.LocalMaster = 1
				o.LocalSentinelMaster = 0
				o.LocalSentinelStaleFor = 20 * time.Second
				return o
			}(),
			want: plan(1, authoritySentinel, nil),
		},
		"FencedBootJoinsMajorityMaster": {
			reason: "a replica booted fenced (replica of itself) joins the master the majority names; its empty Sentinel is pointed too",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(2, redisx.RoleReplica), 0, 0, -1)
				o.LocalMaster = 2
				return o
			}(),
			want: plan(0, authoritySentinel, func(p *sentinelPlan) { p.ReplicaOf, p.MonitorLocal = 0, 0 }),
		},
		"ReplicaOfOtherLeftToSentinel": {
			reason: "a replica already following some pod is Sentinel's to reconfigure, not the agent's",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(2, redisx.RoleReplica), 0, 0, 0)
				o.LocalMaster, o.LocalSentinelMaster = 1, 0
				return o
			}(),
			want: plan(0, authoritySentinel, nil),
		},
		"ChainedReplicaFollowsMaster": {
			reason: "a replica left following the old master (now itself a replica) re-points at the master the majority names",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(2, redisx.RoleReplica), 1, 1, 1)
				o.LocalMaster, o.LocalSentinelMaster = 0, 1
				o.NamedMasterRole, o.LocalMasterRole = redisx.RoleMaster, redisx.RoleReplica
				return o
			}(),
			want: plan(1, authoritySentinel, func(p *sentinelPlan) { p.ReplicaOf = 1 }),
		},
		"ReplicaOfUnreachableLeftToSentinel": {
			reason: "a replica whose master does not answer is Sentinel's (mid-failover)",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(2, redisx.RoleReplica), 1, 1, 1)
				o.LocalMaster, o.LocalSentinelMaster = 0, 1
				o.NamedMasterRole = redisx.RoleMaster
				return o
			}(),
			want: plan(1, authoritySentinel, nil),
		},
		"RestartedMasterWithoutReportsAsksSentinel": {
			reason: "a quick restart booted fenced while Sentinels still name this pod, no peer reported: never promote itself, let Sentinel pick",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(0, redisx.RoleReplica), 0, 0, 0)
				o.LocalMaster, o.LocalSentinelMaster = 0, 0
				o.Lease = leaseView{Known: true, Holder: 0, Live: true}
				return o
			}(),
			want: plan(0, authoritySentinel, func(p *sentinelPlan) { p.Failover = true }),
		},
		"DemotedBySwitchoverWaits": {
			reason: "just demoted by a planned switchover, the Sentinels not yet announcing: no failover request",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(0, redisx.RoleReplica), 0, 0, 0)
				o.LocalMaster, o.LocalSentinelMaster = 1, 0
				return o
			}(),
			want: plan(0, authoritySentinel, nil),
		},
		"RestartedMasterBehindReplicaFailsOver": {
			reason: "the restarted master lost its last second (AOF everysec): ask Sentinel to fail over to the fresher replica now",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(0, redisx.RoleReplica), 0, 0, 0)
				o.LocalMaster, o.LocalSentinelMaster = 0, 0
				o.Peers = []nodeState{o.Local, {Reported: true, Role: redisx.RoleReplica, ReplID: "r1", Offset: 120}, {}}
				return o
			}(),
			want: plan(0, authoritySentinel, func(p *sentinelPlan) { p.Failover = true }),
		},
		"RestartedMasterEqualReplicaFailsOver": {
			reason: "a replica with everything the restarted master has: fail over rather than full-resync it",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(0, redisx.RoleReplica), 0, 0, 0)
				o.LocalMaster, o.LocalSentinelMaster = 0, 0
				o.Peers = []nodeState{o.Local, {}, {Reported: true, Role: redisx.RoleReplica, ReplID: "r1", Offset: 100}}
				return o
			}(),
			want: plan(0, authoritySentinel, func(p *sentinelPlan) { p.Failover = true }),
		},
		"RestartedMasterFreshestTakesBack": {
			reason: "the restarted master still has the freshest data: take the role back, as the Sentinels say",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(0, redisx.RoleReplica), 0, 0, 0)
				o.LocalMaster, o.LocalSentinelMaster = 0, 0
				o.Peers = []nodeState{o.Local, {Reported: true, Role: redisx.RoleReplica, ReplID: "r1", Offset: 90}, {}}
				return o
			}(),
			want: plan(0, authoritySentinel, func(p *sentinelPlan) { p.TakeLease, p.Promote, p.Label = true, true, redisx.RoleMaster }),
		},
		"LeaseHolderOtherDemotesSecondMaster": {
			reason: "no majority and another pod holds a live Lease: a second master demotes itself",
			obs: func() sentinelObservation {
				o := obs3(1, redisx.RoleMaster)
				o.Lease = leaseView{Known: true, Holder: 0, Live: true}
				o.LeaseHolderRole = redisx.RoleMaster
				return o
			}(),
			want: plan(0, authorityLease, func(p *sentinelPlan) { p.ReplicaOf, p.MonitorLocal = 0, 0 }),
		},
		"PromotedWhileSentinelsDisagreeKeepsData": {
			reason: "Sentinel promoted this pod while the Lease holder is frozen and the surviving Sentinels do not agree yet: no demotion to the silent holder (its acknowledged writes would go), fenced instead",
			obs: func() sentinelObservation {
				o := withSentinels(obs3(2, redisx.RoleMaster), -2, 0, 2)
				o.Lease = leaseView{Known: true, Holder: 0, Live: true}
				o.LocalSentinelMaster = 2
				o.LastRenew = time.Time{}
				return o
			}(),
			want: plan(0, authorityLease, func(p *sentinelPlan) { p.Fence = true }),
		},
		"RedisDownReleases": {
			reason: "a holder whose redis-server is down releases the Lease and drops its label",
			obs: func() sentinelObservation {
				o := obs3(0, redisx.RoleMaster)
				o.Local = nodeState{}
				o.Lease = leaseView{Known: true, Holder: 0, Live: true}
				return o
			}(),
			want: plan(-1, "", func(p *sentinelPlan) { p.ReleaseLease = true }),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := decideSentinel(tc.obs)
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(sentinelPlan{}, "Reason")); diff != "" {
				t.Errorf("%s\ndecideSentinel(...): -want, +got:\n%s\nreason: %s", tc.reason, diff, got.Reason)
			}
		})
	}
}

func TestDecideSentinelElection(t *testing.T) {
	st := func(replid string, off int64) nodeState {
		return nodeState{Reported: true, Role: redisx.RoleReplica, ReplID: replid, Offset: off}
	}
	cases := map[string]struct {
		reason string
		self   int
		peers  []nodeState
		holder int
		want   sentinelPlan
		why    string // substring of Reason
		// early: the election started less than testElectionWait ago
		// (the other cases are past it).
		early bool
		// unbounded: --election-wait 0.
		unbounded bool
	}{
		"MissingPodPastTheWait": {
			reason: "a pod still missing after --election-wait: the majority that reported elects the freshest of its members",
			self:   1, peers: []nodeState{st("a", 10), st("a", 30), {}}, holder: -1,
			want: plan(1, authorityElection, func(p *sentinelPlan) {
				p.TakeLease, p.Promote, p.Label = true, true, redisx.RoleMaster
			}),
		},
		"UnboundedWaitKeepsWaiting": {
			reason: "--election-wait 0: a missing pod is awaited however long the election has run",
			self:   1, peers: []nodeState{st("a", 10), st("a", 30), {}}, holder: -1, unbounded: true,
			want: plan(-1, authorityElection, nil), why: "--election-wait 0",
		},
		"SlowPodAwaited": {
			reason: "a full restart where the pod with the newest data starts last (CI run of TestDeleteAllPods: pods 0 and 1 elected pod 0 before pod 2, the only one that took the last writes, reported): the election waits for it",
			self:   0, peers: []nodeState{st("a", 10), st("a", 10), {}}, holder: -1, early: true,
			want: plan(-1, authorityElection, nil), why: "pod 2 has not reported",
		},
		"AllReportedEarly": {
			reason: "every pod reported: no wait",
			self:   2, peers: []nodeState{st("a", 10), st("a", 30), st("a", 50)}, holder: -1, early: true,
			want: plan(2, authorityElection, func(p *sentinelPlan) {
				p.TakeLease, p.Promote, p.Label = true, true, redisx.RoleMaster
			}),
		},
		"FreshestWins": {
			reason: "the highest offset of one history takes the Lease, promotes and points the Sentinels",
			self:   2, peers: []nodeState{st("a", 10), st("a", 30), st("a", 50)}, holder: -1,
			want: plan(2, authorityElection, func(p *sentinelPlan) {
				p.TakeLease, p.Promote, p.Label = true, true, redisx.RoleMaster
			}),
		},
		"NotFreshestWaits": {
			reason: "a pod that is not the freshest waits for the winner",
			self:   0, peers: []nodeState{st("a", 10), st("a", 30), st("a", 50)}, holder: -1,
			want: plan(2, authorityElection, nil), why: "pod 2 has the freshest",
		},
		"StaleSelfHolderReleases": {
			reason: "the old holder restarted as a replica and is not the freshest: it releases the Lease for the winner",
			self:   0, peers: []nodeState{st("a", 10), st("a", 50), {}}, holder: 0,
			want: plan(1, authorityElection, func(p *sentinelPlan) { p.ReleaseLease = true }),
		},
		"TieLowestOrdinal": {
			reason: "equal offsets: the lowest ordinal wins",
			self:   1, peers: []nodeState{{}, st("a", 50), st("a", 50)}, holder: -1,
			want: plan(1, authorityElection, func(p *sentinelPlan) {
				p.TakeLease, p.Promote, p.Label = true, true, redisx.RoleMaster
			}),
		},
		"TieHigherOrdinalWaits": {
			reason: "equal offsets: the higher ordinal waits",
			self:   2, peers: []nodeState{{}, st("a", 50), st("a", 50)}, holder: -1,
			want: plan(1, authorityElection, nil),
		},
		"NoMajorityReported": {
			reason: "one of three pods reported: nobody may win, not even the one that reported",
			self:   2, peers: []nodeState{{}, {}, st("a", 50)}, holder: -1,
			want: plan(-1, authorityElection, nil), why: "1 of 3 pods reported",
		},
		"ReplidMismatchBlocks": {
			reason: "two non-empty histories that diverged: the election is blocked, no guess",
			self:   2, peers: []nodeState{st("a", 10), st("b", 30), st("a", 50)}, holder: -1,
			want: plan(-1, authorityElection, nil), why: "diverged",
		},
		"EmptyPodsDoNotBlock": {
			reason: "a pod with an empty dataset (new PVC) neither wins nor blocks",
			self:   1, peers: []nodeState{st("x", 0), st("a", 30), st("a", 20)}, holder: -1,
			want: plan(1, authorityElection, func(p *sentinelPlan) {
				p.TakeLease, p.Promote, p.Label = true, true, redisx.RoleMaster
			}),
		},
		"AllEmptyLowestOrdinal": {
			reason: "a brand-new StatefulSet: all empty, pod 0 wins",
			self:   0, peers: []nodeState{st("x", 0), st("y", 0), st("z", 0)}, holder: -1,
			want: plan(0, authorityElection, func(p *sentinelPlan) {
				p.TakeLease, p.Promote, p.Label = true, true, redisx.RoleMaster
			}),
		},
		"NewHistoryContainsOld": {
			reason: "a promoted replica's replid2 covers a pod that stopped before the switch",
			self:   1,
			peers: []nodeState{
				st("old", 40),
				{Reported: true, Role: redisx.RoleReplica, ReplID: "new", ReplID2: "old", SecondOffset: 41, Offset: 45},
				{},
			},
			holder: -1,
			want: plan(1, authorityElection, func(p *sentinelPlan) {
				p.TakeLease, p.Promote, p.Label = true, true, redisx.RoleMaster
			}),
		},
		"OldMasterTailPastFailoverLoses": {
			reason: "the old master went on past the switch (Sentinel hellos, writes before its demotion): the promoted pod still wins, as Redis itself drops that tail when the old master rejoins (CI run of TestDeleteAllPods: a full restart right after a failover blocked the election for good)",
			self:   1,
			peers: []nodeState{
				st("old", 44),
				{Reported: true, Role: redisx.RoleMaster, ReplID: "new", ReplID2: "old", SecondOffset: 41, Offset: 45},
				st("old", 44),
			},
			holder: -1,
			want: plan(1, authorityElection, func(p *sentinelPlan) {
				p.TakeLease, p.Label = true, redisx.RoleMaster
			}),
			why: "pod 0's 4 bytes past the failover at offset 40 are dropped",
		},
		"PromotedBeatsHigherOffsetOfOldHistory": {
			reason: "seen from the old master, whose offset is higher than the promoted pod's: it waits for the promoted one",
			self:   0,
			peers: []nodeState{
				st("old", 25523),
				{Reported: true, Role: redisx.RoleReplica, ReplID: "new", ReplID2: "old", SecondOffset: 25309, Offset: 25400},
				st("new", 25400),
			},
			holder: -1,
			want:   plan(1, authorityElection, nil), why: "pod 1 has the freshest",
		},
		"RestartAfterFailoverReplicaFirst": {
			reason: "a full restart after a failover (CI, real nodes): pod 2 was promoted from pod 0's history and remembers it, pod 1 replicates pod 2 without the link, pod 0 kept a tail; pod 1 comes first in the scan and must not block the election against pod 0",
			self:   1,
			peers: []nodeState{
				st("old", 28561),
				st("new", 47877),
				{Reported: true, Role: redisx.RoleReplica, ReplID: "new", ReplID2: "old", SecondOffset: 27914, Offset: 47877},
			},
			holder: -1,
			want: plan(1, authorityElection, func(p *sentinelPlan) {
				p.TakeLease, p.Promote, p.Label = true, true, redisx.RoleMaster
			}),
			why: "pod 0's 648 bytes past the failover at offset 27913 are dropped",
		},
		"TwoPromotionsFromOneHistoryBlock": {
			reason: "two pods promoted from the same history (a split brain): neither contains the other, the election is blocked",
			self:   1,
			peers: []nodeState{
				st("old", 30),
				{Reported: true, Role: redisx.RoleReplica, ReplID: "new1", ReplID2: "old", SecondOffset: 41, Offset: 60},
				{Reported: true, Role: redisx.RoleReplica, ReplID: "new2", ReplID2: "old", SecondOffset: 41, Offset: 50},
			},
			holder: -1,
			want:   plan(-1, authorityElection, nil), why: "diverged",
		},
		"LiveMasterBeatsReplicaReadLater": {
			reason: "a master whose Lease looked expired (API down) keeps the role although a replica's offset, read a moment later, is a ping ahead",
			self:   1,
			peers:  []nodeState{st("a", 8891531), {Reported: true, Role: redisx.RoleMaster, ReplID: "a", Offset: 8891517}, st("a", 8891517)},
			holder: -1,
			want: plan(1, authorityElection, func(p *sentinelPlan) {
				p.TakeLease, p.Label = true, redisx.RoleMaster
			}),
		},
		"ReplicaDoesNotBeatMasterOnSkew": {
			reason: "the same seen from the replica: it waits for the master",
			self:   0,
			peers:  []nodeState{st("a", 8891531), {Reported: true, Role: redisx.RoleMaster, ReplID: "a", Offset: 8891517, Fenced: true}, {}},
			holder: -1,
			want:   plan(1, authorityElection, nil),
		},
		"MasterAlreadyDoesNotPromoteAgain": {
			reason: "a winner that is already master (Lease expired while the API was down) takes the Lease without REPLICAOF",
			self:   0,
			peers:  []nodeState{{Reported: true, Role: redisx.RoleMaster, ReplID: "a", Offset: 90}, st("a", 80), {}},
			holder: -1,
			want: plan(0, authorityElection, func(p *sentinelPlan) {
				p.TakeLease, p.Label = true, redisx.RoleMaster
			}),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := obs3(tc.self, redisx.RoleReplica)
			o.Peers = tc.peers
			o.Local = tc.peers[tc.self]
			o.LocalMaster = tc.self // fenced boot
			o.Lease = leaseView{Known: true, Holder: tc.holder, Live: tc.holder >= 0}
			if !tc.early {
				o.ElectionFor = testElectionWait
			}
			if tc.unbounded {
				o.ElectionWait, o.ElectionFor = 0, time.Hour
			}
			got := decideSentinel(o)
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(sentinelPlan{}, "Reason")); diff != "" {
				t.Errorf("%s\ndecideSentinel(...): -want, +got:\n%s\nreason: %s", tc.reason, diff, got.Reason)
			}
			if !strings.Contains(got.Reason, tc.why) {
				t.Errorf("%s\nreason %q does not contain %q", tc.reason, got.Reason, tc.why)
			}
		})
	}
}

// TestDecideSentinelFence steps a fake clock past the renew deadline: a master
// that has neither a Sentinel majority nor a Lease renewal fences itself at
// exactly RenewDeadline, and stays fenced until it is master of record again.
func TestDecideSentinelFence(t *testing.T) {
	cases := map[string]struct {
		reason      string
		elapsed     time.Duration
		electionFor time.Duration // 0: past testElectionWait
		lease       leaseView
		fenced      bool
		views       []int
		want        func(*sentinelPlan)
	}{
		"BeforeDeadline": {
			reason:  "API down, no majority, 9.999s since the last renewal: keep serving",
			elapsed: 10*time.Second - time.Millisecond, views: []int{-2, -2, 0},
			want: func(p *sentinelPlan) { p.Label = "" },
		},
		"AtDeadline": {
			reason:  "API down, no majority, 10s since the last renewal: fence (Lease lasts 15s)",
			elapsed: 10 * time.Second, views: []int{-2, -2, 0},
			want: func(p *sentinelPlan) { p.Label, p.Fence = "", true },
		},
		"AlreadyFenced": {
			reason:  "fenced stays fenced without a fresh fence call",
			elapsed: time.Minute, fenced: true, views: []int{-2, -2, -2},
			want: func(p *sentinelPlan) { p.Label = "" },
		},
		"APIDownMajorityReachable": {
			reason:  "API down for a minute but a Sentinel majority names this master: no fence",
			elapsed: time.Minute, views: []int{0, 0, -2},
			want: func(p *sentinelPlan) {
				p.Master, p.Authority, p.TakeLease, p.Label = 0, authoritySentinel, true, redisx.RoleMaster
			},
		},
		"RecoveredLeaseUnfences": {
			reason:  "the API is back and this pod still holds the Lease: renew and unfence",
			elapsed: time.Minute, fenced: true, views: []int{-2, -2, -2},
			lease: leaseView{Known: true, Holder: 0, Live: true},
			want: func(p *sentinelPlan) {
				p.Master, p.Authority, p.RenewLease, p.Label, p.Unfence, p.PointSentinels = 0, authorityLease, true, redisx.RoleMaster, true, true
			},
		},
		"LostElectionFences": {
			reason:  "a master whose Lease expired and that is not the election winner fences after the deadline",
			elapsed: 11 * time.Second, views: []int{-2, -2, -2},
			lease: leaseView{Known: true, Holder: -1},
			want:  func(p *sentinelPlan) { p.Master, p.Authority, p.Fence = 1, authorityElection, true },
		},
		"WaitingElectionFences": {
			reason:  "the election still waits for pod 2 to report: no winner yet, and the master fences after the deadline all the same",
			elapsed: 11 * time.Second, views: []int{-2, -2, -2}, electionFor: time.Second,
			lease: leaseView{Known: true, Holder: -1},
			want:  func(p *sentinelPlan) { p.Authority, p.Fence = authorityElection, true },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := withSentinels(obs3(0, redisx.RoleMaster), tc.views...)
			o.LocalSentinelMaster = 0
			o.Local.Fenced = tc.fenced
			o.LocalReplicasOnline = 1
			o.Lease = tc.lease
			// Pod 1 was promoted while pod 0 was cut off: its history
			// contains pod 0's (replid2) and goes further.
			o.Peers = []nodeState{o.Local, {Reported: true, Role: redisx.RoleReplica, ReplID: "r2", ReplID2: "r1", SecondOffset: 101, Offset: 200}, {}}
			o.LastRenew = t0
			o.Now = t0.Add(tc.elapsed)
			o.ElectionFor = testElectionWait
			if tc.electionFor > 0 {
				o.ElectionFor = tc.electionFor
			}
			got := decideSentinel(o)
			want := plan(-1, "", tc.want)
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(sentinelPlan{}, "Reason")); diff != "" {
				t.Errorf("%s\ndecideSentinel(...): -want, +got:\n%s\nreason: %s", tc.reason, diff, got.Reason)
			}
		})
	}
}
