package cluster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// Lines as Redis 7.0.15 prints them (nodesconf/testdata/generate.sh setup).
const nodesReply = `a4a25dc6581ab7f421fa2b7e8617819ec0986213 127.0.10.2:7010@17010,node-2.test myself,master - 0 1795305023000 1 connected 5461-10921 [93-<-bbd6c68dddad332e7d6a17b67de558872b4acc05] [5500->-e42f57c1d53c6cce67145bc777dd478da1a9e2dc]
f7f65fb3390585a87c13d4eb8a35c8b9d6e493f6 127.0.10.4:7010@17010,node-4.test slave bbd6c68dddad332e7d6a17b67de558872b4acc05 0 1795305023112 2 connected
89d3c39a2641f697355ac8052ed4fdf1b45e08b4 127.0.10.6:7010@17010 master,fail - 1795305022104 1795305021601 3 disconnected
bbd6c68dddad332e7d6a17b67de558872b4acc05 127.0.10.1:7010@17010,node-1.test master - 0 1795305023113 2 connected 0-5460 16383
1add9e3f480df40d0927838e85d3699781e70b88 ::1:7011@17011,node-v1.test master - 0 1795305023951 0 connected
13a458ebddc675f69a06806004f97fe1221cd3d9 :0@0 slave,noaddr a4a25dc6581ab7f421fa2b7e8617819ec0986213 0 1795305023112 1 disconnected
`

func TestParseClusterNodes(t *testing.T) {
	got, err := parseClusterNodes(nodesReply)
	if err != nil {
		t.Fatal(err)
	}
	want := []clusterNode{
		{ID: "a4a25dc6581ab7f421fa2b7e8617819ec0986213", IP: "127.0.10.2", Port: 7010, Hostname: "node-2.test", Flags: []string{"myself", "master"}, Connected: true,
			Slots:     []slotRange{{5461, 10921}},
			Importing: map[int]string{93: "bbd6c68dddad332e7d6a17b67de558872b4acc05"}, Migrating: map[int]string{5500: "e42f57c1d53c6cce67145bc777dd478da1a9e2dc"}},
		{ID: "f7f65fb3390585a87c13d4eb8a35c8b9d6e493f6", IP: "127.0.10.4", Port: 7010, Hostname: "node-4.test", Flags: []string{"slave"}, MasterID: "bbd6c68dddad332e7d6a17b67de558872b4acc05", Connected: true},
		{ID: "89d3c39a2641f697355ac8052ed4fdf1b45e08b4", IP: "127.0.10.6", Port: 7010, Flags: []string{"master", "fail"}},
		{ID: "bbd6c68dddad332e7d6a17b67de558872b4acc05", IP: "127.0.10.1", Port: 7010, Hostname: "node-1.test", Flags: []string{"master"}, Connected: true, Slots: []slotRange{{0, 5460}, {16383, 16383}}},
		{ID: "1add9e3f480df40d0927838e85d3699781e70b88", IP: "::1", Port: 7011, Hostname: "node-v1.test", Flags: []string{"master"}, Connected: true},
		{ID: "13a458ebddc675f69a06806004f97fe1221cd3d9", Port: 0, Flags: []string{"slave", "noaddr"}, MasterID: "a4a25dc6581ab7f421fa2b7e8617819ec0986213"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseClusterNodes -want +got:\n%s", diff)
	}
	if got[4].addr() != "[::1]:7011" {
		t.Errorf("IPv6 addr() = %q", got[4].addr())
	}
	for _, bad := range []string{"abc 1.2.3.4:1@2 master", "abc 1.2.3.4@2 master - 0 0 0 connected", "abc 1.2.3.4:1@2 master - 0 0 0 connected 16384", "abc 1.2.3.4:1@2 master - 0 0 0 connected [1-?-x]"} {
		if _, err := parseClusterNodes(bad); err == nil {
			t.Errorf("parseClusterNodes(%q) succeeded, want an error", bad)
		}
	}
}

func TestMeetDecision(t *testing.T) {
	me := []clusterNode{{ID: "a", IP: "10.0.0.1", Port: 6379, Flags: []string{"myself", "master"}, Slots: []slotRange{{0, 100}}},
		{ID: "b", IP: "10.0.0.2", Port: 6379, Flags: []string{"master"}, Connected: true}}
	peerB := []clusterNode{{ID: "b", IP: "10.0.0.2", Port: 6379, Flags: []string{"myself", "master"}}}
	peerC := []clusterNode{{ID: "c", IP: "10.0.0.3", Port: 6379, Flags: []string{"myself", "master"}}}
	peerCWithSlots := []clusterNode{{ID: "c", IP: "10.0.0.3", Port: 6379, Flags: []string{"myself", "master"}, Slots: []slotRange{{200, 300}}}}
	stale := append([]clusterNode(nil), me...)
	stale[1] = clusterNode{ID: "b", IP: "10.0.0.2", Port: 6379, Flags: []string{"master", "fail"}}
	cases := map[string]struct {
		mine     []clusterNode
		peer     []clusterNode
		peerKeys int64
		ip       string
		want     bool
		because  string
	}{
		"KnownAndConnected":    {me, peerB, 0, "10.0.0.2", false, "already known"},
		"KnownAtOldAddress":    {me, peerB, 0, "10.0.0.9", true, "now at"},
		"KnownButFailed":       {stale, peerB, 0, "10.0.0.2", true, "flagged"},
		"FreshPeer":            {me, peerC, 0, "10.0.0.3", true, "new"},
		"PeerOfAnotherCluster": {me, peerCWithSlots, 0, "10.0.0.3", false, "different clusters"},
		"PeerWithKeysNoSlots":  {me, peerC, 5, "10.0.0.3", false, "different clusters"},
		"BothHoldSlotsUnknown": {me[:1:1], peerCWithSlots, 0, "10.0.0.3", false, "different clusters"},
		"EmptyMeJoinsACluster": {[]clusterNode{{ID: "a", Flags: []string{"myself", "master"}}}, peerCWithSlots, 9, "10.0.0.3", true, "new"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, why := meetDecision(tc.mine, 0, tc.peer, tc.peerKeys, tc.ip, 6379)
			if got != tc.want || !strings.Contains(why, tc.because) {
				t.Errorf("meetDecision() = %v %q, want %v and a reason containing %q", got, why, tc.want, tc.because)
			}
		})
	}
}

func TestClusterReadiness(t *testing.T) {
	ok := map[string]string{"cluster_state": "ok"}
	masterLine := clusterNode{ID: "m", IP: "10.0.0.1", Port: 6379, Flags: []string{"master"}, Connected: true, Slots: []slotRange{{0, 16383}}}
	replicaView := []clusterNode{masterLine, {ID: "r", IP: "10.0.0.2", Port: 6379, Flags: []string{"myself", "slave"}, MasterID: "m"}}
	up := redisx.ReplInfo{Role: redisx.RoleReplica, LinkUp: true, MasterHost: "10.0.0.1", MasterPort: 6379}
	stale := redisx.ReplInfo{Role: redisx.RoleReplica, LinkUp: true, MasterHost: "10.0.0.7", MasterPort: 6379}
	syncing := redisx.ReplInfo{Role: redisx.RoleReplica, LinkUp: true, Syncing: true, MasterHost: "10.0.0.1", MasterPort: 6379}
	noaddr := []clusterNode{{ID: "m", Port: 0, Flags: []string{"master", "noaddr"}, Slots: []slotRange{{0, 16383}}}, replicaView[1]}
	cases := map[string]struct {
		info map[string]string
		view []clusterNode
		repl redisx.ReplInfo
		want string // "" for ready
	}{
		"HealthyReplica":        {ok, replicaView, up, ""},
		"StateFail":             {map[string]string{"cluster_state": "fail"}, replicaView, up, "cluster_state"},
		"ReplicaLinkDown":       {ok, replicaView, redisx.ReplInfo{Role: redisx.RoleReplica}, `master_link_status is "down"`},
		"ReplicaSyncing":        {ok, replicaView, syncing, "still syncing"},
		"ReplicaFollowsStaleIP": {ok, replicaView, stale, "stale address"},
		"SlotOwnerWithoutAddr":  {ok, noaddr, up, "noaddr"},
		"HealthyMaster":         {ok, []clusterNode{{ID: "m", IP: "10.0.0.1", Port: 6379, Flags: []string{"myself", "master"}, Slots: []slotRange{{0, 16383}}}}, redisx.ReplInfo{Role: redisx.RoleMaster}, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := clusterReadiness(tc.info, tc.view, tc.repl)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("clusterReadiness() = %v, want ready", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("clusterReadiness() = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestBestReplica(t *testing.T) {
	view := []clusterNode{
		{ID: "m", IP: "10.0.0.1", Port: 6379, Flags: []string{"myself", "master"}, Slots: []slotRange{{0, 16383}}},
		{ID: "r1", IP: "10.0.0.2", Port: 6379, Flags: []string{"slave"}, MasterID: "m"},
		{ID: "r2", IP: "10.0.0.3", Port: 6379, Flags: []string{"slave"}, MasterID: "m"},
		{ID: "r3", IP: "10.0.0.4", Port: 6379, Flags: []string{"slave", "nofailover"}, MasterID: "m"},
	}
	cases := map[string]struct {
		info string // INFO replication of the master
		want string // node ID, or "" for an error
	}{
		"HighestOffset": {"role:master\r\nconnected_slaves:2\r\n" +
			"slave0:ip=10.0.0.2,port=6379,state=online,offset=100,lag=0\r\n" +
			"slave1:ip=10.0.0.3,port=6379,state=online,offset=120,lag=1\r\n", "r2"},
		"LowestLagOnATie": {"role:master\r\n" +
			"slave0:ip=10.0.0.2,port=6379,state=online,offset=120,lag=1\r\n" +
			"slave1:ip=10.0.0.3,port=6379,state=online,offset=120,lag=0\r\n", "r2"},
		"SkipsLinkNotOnline": {"role:master\r\n" +
			"slave0:ip=10.0.0.2,port=6379,state=online,offset=100,lag=0\r\n" +
			"slave1:ip=10.0.0.3,port=6379,state=wait_bgsave,offset=0,lag=1\r\n", "r1"},
		"SkipsNoFailover": {"role:master\r\n" +
			"slave0:ip=10.0.0.4,port=6379,state=online,offset=500,lag=0\r\n" +
			"slave1:ip=10.0.0.3,port=6379,state=online,offset=10,lag=0\r\n", "r2"},
		"NoReplica":  {"role:master\r\nconnected_slaves:0\r\n", ""},
		"OnlyNoFail": {"role:master\r\nslave0:ip=10.0.0.4,port=6379,state=online,offset=500,lag=0\r\n", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			repl, err := redisx.ParseReplInfo(tc.info)
			if err != nil {
				t.Fatal(err)
			}
			got, err := bestReplica(view, repl)
			if tc.want == "" {
				if err == nil {
					t.Errorf("bestReplica() = %s, want an error", got.ID)
				}
				return
			}
			if err != nil || got.ID != tc.want {
				t.Errorf("bestReplica() = %q, %v; want %s", got.ID, err, tc.want)
			}
		})
	}
}
