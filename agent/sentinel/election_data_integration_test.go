package sentinel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

// TestElectionFromData (issue 15, part 4): a cold-start election on real
// redis-server 7.0 processes, judged by the data each one loaded, not by
// what the agent remembers. Three pods: pod 0 was the master, pods 1 and 2
// its replicas; 100 keys, then 100 more, every pod's agent file saved at
// the final position; then every process is killed (SIGKILL, a power
// loss) and restarted fenced (replica of its own address, port 0), as
// init boots a pod that knows no master. The winner is computed by
// freshest() over what each pod's effective() reports, and the oracle is
// the winner's own DBSIZE: every one of the 200 keys.
//
//   - rdb-stale-dump (appendonly no): pod 1 saved its dump after the first
//     100 keys only, pod 2 after all 200; pod 0's data directory was moved
//     aside (its file stayed). Before this test's fix pod 0 won (ordinal 0,
//     the file's offset), then pod 1 on a tie with its file — both losing
//     writes. Pod 2 must win.
//   - aof (appendonly yes, appendfsync always): every pod's AOF holds all
//     200 keys; pod 0's AOF directory was moved aside. Pod 1 must win (the
//     lowest ordinal among the equally fresh), never pod 0.
func TestElectionFromData(t *testing.T) {
	proctest.NeedPrograms(t, "redis-server")
	for _, tc := range []struct {
		name    string
		aof     bool
		want    int
		persist string
	}{
		{name: "rdb-stale-dump", want: 2, persist: "appendonly no\nsave \"\"\n"},
		{name: "aof", aof: true, want: 1, persist: "appendonly yes\nappendfsync always\nsave \"\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) { testElectionFromData(t, tc.aof, tc.want, tc.persist) })
	}
}

func testElectionFromData(t *testing.T, aof bool, want int, persist string) {
	ctx := context.Background()
	addr := func(i int) string { return fmt.Sprintf("127.0.47.%d", 10+i) }
	dirs := make([]string, 3)
	procs := make([]*proctest.Proc, 3)
	clients := make([]*redis.Client, 3)
	start := func(i int, replicaOf string) {
		conf := filepath.Join(dirs[i], "redis.conf")
		body := fmt.Sprintf("bind %s\nport 6379\nprotected-mode no\ndir %s\n%sreplicaof %s\nrepl-diskless-sync no\n", addr(i), dirs[i], persist, replicaOf)
		if replicaOf == "" {
			body = strings.Replace(body, "replicaof \n", "", 1)
		}
		proctest.WriteFile(t, conf, []byte(body))
		procs[i] = proctest.Start(t, filepath.Join(dirs[i], fmt.Sprintf("redis-%d.log", time.Now().UnixNano())), "redis-server", conf)
		proctest.WaitPing(t, addr(i)+":6379", "", 10*time.Second)
		clients[i] = redis.NewClient(&redis.Options{Addr: addr(i) + ":6379", Protocol: 2, DisableIdentity: true})
		t.Cleanup(func() { _ = clients[i].Close() })
	}
	modes := make([]*sentinelMode, 3)
	for i := range 3 {
		dirs[i] = t.TempDir()
		modes[i] = &sentinelMode{
			cfg:   config.Config{RedisConfInclude: filepath.Join(dirs[i], "conf", "redis-ha.conf"), RedisPort: 6379},
			peers: sentinelPeers{Pods: 3, Self: i, Addr: addr, Timeout: time.Second},
			deps:  sidecar.Deps{Clock: clock.RealClock{}},
			log:   zerolog.Nop(),
		}
		if err := os.MkdirAll(filepath.Dir(modes[i].cfg.RedisConfInclude), 0o755); err != nil {
			t.Fatal(err)
		}
		rep := ""
		if i > 0 {
			rep = addr(0) + " 6379"
		}
		start(i, rep)
	}
	write := func(from, n int) {
		for k := from; k < from+n; k++ {
			if err := clients[0].Set(ctx, fmt.Sprintf("key:%d", k), k, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		proctest.Eventually(t, 20*time.Second, func() error {
			n, err := clients[0].Do(ctx, "WAIT", 2, 1000).Int()
			if err == nil && n < 2 {
				err = fmt.Errorf("WAIT 2 answered %d", n)
			}
			return err
		}, "both replicas acknowledge")
	}
	local := func(i int) redisx.ReplInfo {
		t.Helper()
		r, err := newRedisNode(addr(i), 6379, func() string { return "" }, 3*time.Second).Replication(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	write(0, 100)
	if !aof {
		if err := clients[1].Save(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	write(100, 100)
	if !aof {
		for _, i := range []int{0, 2} {
			if err := clients[i].Save(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each agent's last pass saved the final position.
	for i := range 3 {
		modes[i].saveState(local(i))
	}
	for i := range 3 {
		procs[i].Stop(syscall.SIGKILL, time.Second)
		_ = clients[i].Close()
	}
	// Pod 0's data is moved aside; its agent's file stays.
	moved := "dump.rdb"
	if aof {
		moved = "appendonlydir"
	}
	if err := os.Rename(filepath.Join(dirs[0], moved), filepath.Join(dirs[0], moved+".aside")); err != nil {
		t.Fatal(err)
	}
	states := make([]nodeState, 3)
	for i := range 3 {
		start(i, addr(i)+" 0")
		states[i] = modes[i].effective(local(i))
		n, _ := clients[i].DBSize(ctx).Result()
		t.Logf("pod %d restarted fenced: %d keys loaded, reports replid %s offset %d", i, n, states[i].ReplID, states[i].Offset)
	}
	w, why := freshest(states)
	t.Logf("winner: pod %d (%s)", w, why)
	if w != want {
		t.Errorf("election winner pod %d (%s), want pod %d", w, why, want)
	}
	if w >= 0 {
		if n, err := clients[w].DBSize(ctx).Result(); err != nil || n != 200 {
			t.Errorf("the winner, pod %d, holds %d keys (%v); all 200 acknowledged by every replica must survive", w, n, err)
		}
	}
}
