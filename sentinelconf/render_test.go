package sentinelconf

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// realParams are the settings the real files were generated with
// (testdata/generate.sh), as pod n (1-3) of the three would render them.
func realParams(n int) Params {
	ids := []string{id1, id2, id3}
	hosts := []string{"127.0.20.11", "127.0.20.12", "127.0.20.13"}
	p := Params{
		MasterName: "mymaster", MasterHost: "127.0.20.11", MasterPort: 6390, Quorum: 2,
		DownAfter: time.Second, FailoverTimeout: 10 * time.Second, ParallelSyncs: 1,
		MyID: ids[n-1], AnnounceHost: hosts[n-1], Port: 26390,
	}
	for i := range ids {
		if i != n-1 {
			p.Peers = append(p.Peers, Peer{Host: hosts[i], MyID: ids[i]})
		}
	}
	return p
}

func podParams() Params {
	return Params{
		MasterName: "mymaster", MasterHost: "redis-0.redis-headless.prod.svc.cluster.local", MasterPort: 6379, Quorum: 2,
		DownAfter: 5 * time.Second, FailoverTimeout: time.Minute, ParallelSyncs: 1,
		MyID: MyID("prod", "redis-1"), AnnounceHost: "redis-1.redis-headless.prod.svc.cluster.local", Port: 26379,
		Peers: []Peer{
			{Host: "redis-0.redis-headless.prod.svc.cluster.local", MyID: MyID("prod", "redis-0")},
			{Host: "redis-2.redis-headless.prod.svc.cluster.local", MyID: MyID("prod", "redis-2")},
		},
	}
}

// TestGolden renders and merges into golden files; run with -update after a
// deliberate change and review the diff.
func TestGolden(t *testing.T) {
	withPassword := podParams()
	withPassword.Password = "0123abcd-not-a-real-secret"
	masterMoved := realParams(2)
	masterMoved.MasterHost = "127.0.20.12"
	masterMoved.Peers = masterMoved.Peers[:1] // pod 3 (127.0.20.13) is gone
	repaired := realParams(1)
	repaired.Password = "n3w-s3cret"
	noMaster := realParams(1)
	noMaster.MasterHost, noMaster.Password = "", "n3w-s3cret"
	external := podParams()
	external.MasterHost, external.MasterPort = "192.0.2.10", 31000
	external.AnnounceHost, external.AnnouncePort = "192.0.2.11", 31101

	type golden struct {
		reason   string
		existing string // testdata file, "" for none
		params   Params
	}
	cases := map[string]golden{
		"render-pod.golden":          {reason: "fresh file for a pod, no auth", params: podParams()},
		"render-pod-external.golden": {reason: "external access: the node address and the Sentinel's NodePort announced, the master at its node address and NodePort; Sentinel still listens on Port", params: external},
		"render-pod-password.golden": {reason: "fresh file with auth: auth-pass, requirepass, sentinel-pass", params: withPassword},
		"merge-redis-7.0.15-noauth-failover-2-master-moved-peer-gone.golden": {
			reason: "master moved to the replica and pod 3 is gone", existing: "redis-7.0.15/noauth-failover-2.conf", params: masterMoved,
		},
		"merge-redis-7.0.15-auth-failover-1-no-master.golden": {
			reason: "no master known (fenced boot): no monitor and no per-master lines; auth for the Sentinel itself stays", existing: "redis-7.0.15/auth-failover-1.conf", params: noMaster,
		},
	}
	for _, engine := range engines {
		cases["merge-"+engine+"-noauth-failover-1.golden"] = golden{
			reason: engine + ": same master, all peers live: Sentinel's state kept, user default dropped", existing: engine + "/noauth-failover-1.conf", params: realParams(1),
		}
		cases["merge-"+engine+"-auth-failover-1-repaired.golden"] = golden{
			reason:   engine + ": Sentinel wrote the password so that it cannot read it back (unquoted; Valkey 8.1 also requirepass with bare quotes); merge writes the new one and drops the old, and the commented-out \"# ??? requirepass\" copies",
			existing: engine + "/auth-failover-1.conf", params: repaired,
		}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var existing []byte
			if tc.existing != "" {
				existing = readTestdata(t, tc.existing)
			}
			got, _, err := Merge(existing, tc.params)
			if err != nil {
				t.Fatalf("%s: %v", tc.reason, err)
			}
			golden := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update ./sentinelconf to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s (-%s +got):\n%s", tc.reason, golden, diff)
			}
			if _, err := Parse(got); err != nil {
				t.Errorf("%s: output does not parse: %v", tc.reason, err)
			}
			again, _, err := Merge(got, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(got), string(again)); diff != "" {
				t.Errorf("%s: merge is not idempotent (-once +twice):\n%s", tc.reason, diff)
			}
		})
	}
}
