package redisx

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseReplInfo(t *testing.T) {
	cases := map[string]struct {
		reason string
		text   string
		want   ReplInfo
		err    bool
	}{
		"Master": {
			reason: "redis-server 7.0.15 master with one online replica",
			text: "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n" +
				"slave0:ip=127.0.30.251,port=7000,state=online,offset=1464,lag=0\r\n" +
				"master_failover_state:no-failover\r\n" +
				"master_replid:f7035f3dcc52ca28b2e79d9e642bae4d5811ef1c\r\n" +
				"master_replid2:0000000000000000000000000000000000000000\r\n" +
				"master_repl_offset:1464\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:1\r\n",
			want: ReplInfo{Role: RoleMaster, ReplID: "f7035f3dcc52ca28b2e79d9e642bae4d5811ef1c", Offset: 1464, SecondOffset: -1,
				Replicas: []ReplicaEntry{{Host: "127.0.30.251", Port: 7000, State: "online", Offset: 1464}}},
		},
		"FencedReplica": {
			reason: "booted as replica of itself after a restart: replid and offset restored from the RDB, link down",
			text: "# Persistence\r\nloading:0\r\n# Replication\r\nrole:slave\r\nmaster_host:127.0.30.250\r\nmaster_port:7000\r\n" +
				"master_link_status:down\r\nslave_read_repl_offset:1501\r\nslave_repl_offset:1501\r\nmaster_link_down_since_seconds:-1\r\n" +
				"master_replid:f7035f3dcc52ca28b2e79d9e642bae4d5811ef1c\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n" +
				"master_repl_offset:1501\r\nsecond_repl_offset:-1\r\n",
			want: ReplInfo{Role: RoleReplica, MasterHost: "127.0.30.250", MasterPort: 7000, ReplID: "f7035f3dcc52ca28b2e79d9e642bae4d5811ef1c", Offset: 1501, SecondOffset: -1},
		},
		"LinkDownSince": {
			reason: "a replica whose master went away 7 s ago says so",
			text:   "role:slave\r\nmaster_host:m\r\nmaster_port:6379\r\nmaster_link_status:down\r\nmaster_link_down_since_seconds:7\r\n",
			want:   ReplInfo{Role: RoleReplica, MasterHost: "m", MasterPort: 6379, LinkDownFor: 7 * time.Second},
		},
		"PromotedReplica": {
			reason: "after a failover replid2 carries the old history",
			text:   "role:master\nmaster_replid:bbb\nmaster_replid2:aaa\nmaster_repl_offset:90\nsecond_repl_offset:41\n",
			want:   ReplInfo{Role: RoleMaster, ReplID: "bbb", ReplID2: "aaa", Offset: 90, SecondOffset: 41},
		},
		"Loading": {
			reason: "loading a big dataset",
			text:   "loading:1\nrole:slave\nmaster_host:x\nmaster_port:6379\nmaster_link_status:up\n",
			want:   ReplInfo{Role: RoleReplica, MasterHost: "x", MasterPort: 6379, LinkUp: true, Loading: true},
		},
		"ReplicasInOrder": {
			reason: "slaveN lines in N order, lag read; slave_* fields are not replicas",
			text: "role:master\r\nslave_read_only:1\r\nslave_priority:100\r\n" +
				"slave10:ip=10.0.0.12,port=6379,state=online,offset=90,lag=1\r\n" +
				"slave2:ip=10.0.0.4,port=6379,state=wait_bgsave,offset=0,lag=3\r\n",
			want: ReplInfo{Role: RoleMaster, Replicas: []ReplicaEntry{
				{Host: "10.0.0.4", Port: 6379, State: "wait_bgsave", Lag: 3},
				{Host: "10.0.0.12", Port: 6379, State: "online", Offset: 90, Lag: 1}}},
		},
		"Syncing": {
			reason: "a replica in its first full sync",
			text:   "role:slave\r\nmaster_host:m\r\nmaster_port:6379\r\nmaster_link_status:down\r\nmaster_sync_in_progress:1\r\n",
			want:   ReplInfo{Role: RoleReplica, MasterHost: "m", MasterPort: 6379, Syncing: true},
		},
		"PersistenceAndKeyspace": {
			reason: "redis-server 7.0.15 booted fenced with AOF: aof_enabled and the keys of every database (db0 and db3) read",
			text: "# Persistence\r\nloading:0\r\naof_enabled:1\r\naof_current_size:1644\r\n# Replication\r\nrole:slave\r\nmaster_host:h\r\nmaster_port:0\r\n" +
				"master_replid:930724706715528a56550aff768624ffbdde6a4c\r\nmaster_repl_offset:0\r\n# Keyspace\r\ndb0:keys=50,expires=0,avg_ttl=0\r\ndb3:keys=2,expires=1,avg_ttl=900\r\n",
			want: ReplInfo{Role: RoleReplica, MasterHost: "h", ReplID: "930724706715528a56550aff768624ffbdde6a4c", DataKnown: true, AOF: true, Keys: 52},
		},
		"EmptyKeyspace": {
			reason: "RDB only and no key: the Keyspace section lists no database",
			text:   "# Persistence\r\naof_enabled:0\r\n# Replication\r\nrole:master\r\n# Keyspace\r\n",
			want:   ReplInfo{Role: RoleMaster, DataKnown: true},
		},
		"BadKeyspace":    {reason: "garbage key count", text: "aof_enabled:0\nrole:master\ndb0:keys=x,expires=0\n", err: true},
		"BadReplicaLine": {reason: "garbage port in a slaveN line", text: "role:master\nslave0:ip=a,port=x,state=online,offset=1,lag=0\n", err: true},
		"NoRole":         {reason: "not INFO replication output", text: "redis_version:7.0.15\n", err: true},
		"BadOffset":      {reason: "garbage offset", text: "role:master\nmaster_repl_offset:x\n", err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseReplInfo(tc.text)
			if (err != nil) != tc.err {
				t.Fatalf("%s\nparseReplInfo(...) error = %v, want error %t", tc.reason, err, tc.err)
			}
			if tc.err {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nparseReplInfo(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestParseInfo(t *testing.T) {
	// CLUSTER INFO of redis-server 7.0.15, abridged.
	reply := "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:6\r\n\r\n# not a field\r\nno colon\r\n"
	want := map[string]string{"cluster_state": "ok", "cluster_slots_assigned": "16384", "cluster_known_nodes": "6"}
	if diff := cmp.Diff(want, ParseInfo(reply)); diff != "" {
		t.Errorf("parseInfo -want +got:\n%s", diff)
	}
}
