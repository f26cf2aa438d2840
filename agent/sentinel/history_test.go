package sentinel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// TestElectionAfterFailoverWithRealRedis checks the election's view of a
// failover on real redis-servers: the old master goes on past the switch
// (writes and Sentinel-like PUBLISHes reach its replication stream before it
// is demoted), a full restart at that moment must still elect the promoted
// pod, and Redis itself drops the old master's tail when it rejoins, so the
// election loses nothing Redis would have kept.
func TestElectionAfterFailoverWithRealRedis(t *testing.T) {
	proctest.NeedPrograms(t, "redis-server")
	ctx := context.Background()
	block := freeBlock(t)
	addr := func(i int) string { return fmt.Sprintf("127.0.%d.%d", block, 10+i) }
	base := t.TempDir()
	clients := make([]*redis.Client, 2)
	for i := range clients {
		dir := filepath.Join(base, fmt.Sprint(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "redis.conf")
		lines := []string{"bind " + addr(i), "bind-source-addr " + addr(i), "port 6379", "protected-mode no", "dir " + dir, "save \"\"", "appendonly no", "repl-diskless-sync-delay 0"}
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		proctest.Start(t, filepath.Join(dir, "redis.log"), "redis-server", conf)
		clients[i] = redis.NewClient(&redis.Options{Addr: addr(i) + ":6379", Protocol: 2, DisableIdentity: true})
		defer clients[i].Close()
		c := clients[i]
		proctest.Eventually(t, 10*time.Second, func() error { return c.Ping(ctx).Err() }, "redis-server %d answers", i)
	}
	oldM, promoted := clients[0], clients[1]
	state := func(c *redis.Client) nodeState {
		t.Helper()
		text, err := c.Info(ctx, "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		r, err := redisx.ParseReplInfo(text)
		if err != nil {
			t.Fatal(err)
		}
		return reportedState(r)
	}

	if err := promoted.ReplicaOf(ctx, addr(0), "6379").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := oldM.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	proctest.Eventually(t, 20*time.Second, func() error {
		if n, err := oldM.Do(ctx, "WAIT", 1, 1000).Int(); err != nil || n != 1 {
			return fmt.Errorf("WAIT 1: %d, %v", n, err)
		}
		return nil
	}, "the replica has every write")

	// The failover: the replica is promoted; the old master, not yet told,
	// takes one more write and a hello message.
	if err := promoted.ReplicaOf(ctx, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	if err := oldM.Set(ctx, "tail", "after the switch", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := oldM.Publish(ctx, "__sentinel__:hello", "a hello").Err(); err != nil {
		t.Fatal(err)
	}
	if err := promoted.Set(ctx, "new", "on the promoted pod", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Both stop here (a full restart): these are the positions they save.
	peers := []nodeState{state(oldM), state(promoted), {}}
	peers[0].Role = redisx.RoleReplica // the old master's agent saw it demoted
	if peers[0].Offset < peers[1].SecondOffset {
		t.Fatalf("the old master's offset %d did not pass the switch at %d; the test set nothing up", peers[0].Offset, peers[1].SecondOffset)
	}
	w, why := freshest(peers)
	if w != 1 {
		t.Fatalf("freshest(%+v) = %d (%s); want 1, the promoted pod", peers, w, why)
	}
	if !strings.Contains(why, "pod 0's") {
		t.Errorf("reason %q does not name the old master's dropped tail", why)
	}
	// Seen from the old master's side the result is the same.
	if w, why := freshest([]nodeState{peers[1], peers[0], {}}); w != 0 {
		t.Errorf("freshest with the promoted pod first = %d (%s); want 0", w, why)
	}

	// What Redis does with that tail when the old master rejoins.
	if err := oldM.ReplicaOf(ctx, addr(1), "6379").Err(); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, 20*time.Second, func() error {
		r, err := oldM.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(r, "master_link_status:up") {
			return fmt.Errorf("link not up")
		}
		return nil
	}, "the old master replicates from the promoted pod")
	if v, err := oldM.Get(ctx, "new").Result(); err != nil || v != "on the promoted pod" {
		t.Errorf("GET new on the old master = %q, %v; want the promoted pod's write", v, err)
	}
	if err := oldM.Get(ctx, "tail").Err(); err != redis.Nil {
		t.Errorf("GET tail on the rejoined old master: %v; want redis.Nil (Redis drops the tail past the switch)", err)
	}
}
