package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
	"github.com/redis-ha-agent/redis-ha-agent/sentinelconf"
)

// TestSentinelconfRenderIntegration drives real processes on 127.0.21.x:
// two "pods", each a redis-server (master, replica) and a redis-sentinel
// sharing one address, as in a StatefulSet. The sentinel.conf files come
// from the render command. After a failover, Sentinel has rewritten its
// file with epochs and its peer; pod 1 goes away, pod 0 renders again, and
// its Sentinel starts from the merged file with the epochs and the master
// it had, and without the removed peer.
func TestSentinelconfRenderIntegration(t *testing.T) {
	proctest.NeedPrograms(t, "redis-server", "redis-sentinel")
	scClearEnv(t)
	ctx := t.Context()
	const (
		password     = "it-s3cret-0123"
		redisPort    = 6379
		sentinelPort = 26379
		namespace    = "it"
	)
	ips := []string{"127.0.21.1", "127.0.21.2"}
	dirs := []string{t.TempDir(), t.TempDir()}
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	redisAddr := func(i int) string { return fmt.Sprintf("%s:%d", ips[i], redisPort) }
	sentinelAddr := func(i int) string { return fmt.Sprintf("%s:%d", ips[i], sentinelPort) }
	confPath := func(i int) string { return filepath.Join(dirs[i], "sentinel.conf") }

	// redis-server: pod 0 master, pod 1 its replica; the password stays in files.
	for i := range ips {
		conf := []string{
			"bind " + ips[i], "bind-source-addr " + ips[i], "protected-mode no",
			"port " + strconv.Itoa(redisPort), "dir " + dirs[i], "logfile redis.log", `save ""`, "appendonly no",
			"requirepass " + password, "masterauth " + password,
		}
		if i == 1 {
			conf = append(conf, fmt.Sprintf("replicaof %s %d", ips[0], redisPort))
		}
		path := filepath.Join(dirs[i], "redis.conf")
		if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		proctest.Start(t, filepath.Join(dirs[i], "redis.log"), "redis-server", path)
	}
	replica := redis.NewClient(&redis.Options{Addr: redisAddr(1), Password: password, MaxRetries: -1})
	t.Cleanup(func() { _ = replica.Close() })
	if err := proctest.Until(ctx, 30*time.Second, func() error {
		info, err := replica.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica link not up yet:\n%s", info)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	render := func(i int, masterHost string, peers ...string) {
		t.Helper()
		args := []string{
			"--master-host", masterHost, "--quorum", "2", "--down-after", "3s", "--failover-timeout", "20s",
			"--announce-host", ips[i], "--port", strconv.Itoa(sentinelPort),
			"--pod-name", fmt.Sprintf("redis-%d", i), "--namespace", namespace,
			"--password-file", pwFile, "--out", confPath(i),
		}
		for _, p := range peers {
			args = append(args, "--peer", p)
		}
		if _, logs, err := scRender(t, args...); err != nil {
			t.Fatalf("render for pod %d: %v\n%s", i, err, logs)
		}
	}
	startSentinel := func(i int) *proctest.Proc {
		t.Helper()
		return proctest.Start(t, filepath.Join(dirs[i], "sentinel.log"), "redis-sentinel", confPath(i),
			"--bind", ips[i], "--bind-source-addr", ips[i], "--protected-mode", "no", "--dir", dirs[i], "--logfile", "sentinel.log")
	}
	sentinelClient := func(i int) *redis.SentinelClient {
		c := redis.NewSentinelClient(&redis.Options{Addr: sentinelAddr(i), Password: password, MaxRetries: -1})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	masterView := func(c *redis.SentinelClient) (map[string]string, error) {
		return c.Master(ctx, "mymaster").Result()
	}

	render(0, ips[0], "redis-1="+ips[1])
	render(1, ips[0], "redis-0="+ips[0])
	s0, s1 := startSentinel(0), startSentinel(1)
	sc0, sc1 := sentinelClient(0), sentinelClient(1)

	// What was rendered is what Sentinel runs with.
	var got map[string]string
	if err := proctest.Until(ctx, 30*time.Second, func() (err error) {
		got, err = masterView(sc0)
		if err != nil {
			return err
		}
		if got["num-other-sentinels"] != "1" || got["num-slaves"] != "1" {
			return fmt.Errorf("sentinel 0 does not know its peer and the replica yet: %v", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name": "mymaster", "ip": ips[0], "port": "6379", "quorum": "2",
		"down-after-milliseconds": "3000", "failover-timeout": "20000", "parallel-syncs": "1"}
	if diff := cmp.Diff(want, scPick(got, want)); diff != "" {
		t.Errorf("SENTINEL MASTER mymaster (-rendered +sentinel):\n%s", diff)
	}
	masters, err := sc0.Masters(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(masters) != 1 {
		t.Errorf("SENTINEL MASTERS lists %d masters, want 1: %v", len(masters), masters)
	}
	myid := redis.NewStringCmd(ctx, "SENTINEL", "MYID")
	_ = sc0.Process(ctx, myid)
	if id, err := myid.Result(); err != nil || id != sentinelconf.MyID(namespace, "redis-0") {
		t.Errorf("SENTINEL MYID = %q, %v; want MyID(%q, redis-0)", id, err, namespace)
	}

	// A failover gives the epochs something to keep.
	if err := proctest.Until(ctx, 30*time.Second, func() error { return sc0.Failover(ctx, "mymaster").Err() }); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	for i, c := range []*redis.SentinelClient{sc0, sc1} {
		if err := proctest.Until(ctx, 30*time.Second, func() error {
			addr, err := c.GetMasterAddrByName(ctx, "mymaster").Result()
			if err != nil {
				return err
			}
			if addr[0] != ips[1] {
				return fmt.Errorf("sentinel %d names master %v", i, addr)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Sentinel has rewritten its file: the epoch and the peer are in it.
	var before sentinelconf.Master
	var beforeEpoch uint64
	if err := proctest.Until(ctx, 30*time.Second, func() error {
		if err := sc0.FlushConfig(ctx).Err(); err != nil {
			return err
		}
		f, err := scParseFile(confPath(0))
		if err != nil {
			return err
		}
		before, _ = f.Master("mymaster")
		beforeEpoch = f.CurrentEpoch()
		if before.ConfigEpoch < 1 || before.Addr.Host != ips[1] || len(before.KnownSentinels) != 1 {
			return fmt.Errorf("sentinel 0's file does not record the failover and its peer yet: %+v", before)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantPeer := sentinelconf.KnownSentinel{Addr: sentinelconf.Addr{Host: ips[1], Port: sentinelPort}, RunID: sentinelconf.MyID(namespace, "redis-1")}
	if diff := cmp.Diff([]sentinelconf.KnownSentinel{wantPeer}, before.KnownSentinels); diff != "" {
		t.Errorf("known sentinels before (-want +got):\n%s", diff)
	}

	// Pod 1's Sentinel goes away for good; pod 0 restarts and renders again
	// with the master its Sentinels agreed on and no peers.
	s1.Stop(syscall.SIGTERM, 20*time.Second)
	s0.Stop(syscall.SIGTERM, 20*time.Second)
	render(0, ips[1])
	f, err := scParseFile(confPath(0))
	if err != nil {
		t.Fatal(err)
	}
	after, ok := f.Master("mymaster")
	if !ok {
		t.Fatalf("merged file has no monitor line")
	}
	if f.CurrentEpoch() != beforeEpoch || after.ConfigEpoch != before.ConfigEpoch || after.LeaderEpoch != before.LeaderEpoch {
		t.Errorf("epochs changed: current %d→%d, config %d→%d, leader %d→%d",
			beforeEpoch, f.CurrentEpoch(), before.ConfigEpoch, after.ConfigEpoch, before.LeaderEpoch, after.LeaderEpoch)
	}
	if len(after.KnownSentinels) != 0 {
		t.Errorf("the removed peer is still known: %v", after.KnownSentinels)
	}
	if after.Addr != before.Addr {
		t.Errorf("monitor %v, want %v", after.Addr, before.Addr)
	}

	startSentinel(0)
	sc0 = sentinelClient(0)
	if err := proctest.Until(ctx, 30*time.Second, func() (err error) {
		got, err = masterView(sc0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"name": "mymaster", "ip": ips[1], "port": "6379", "quorum": "2",
		"config-epoch": strconv.FormatUint(before.ConfigEpoch, 10), "num-other-sentinels": "0"}
	if diff := cmp.Diff(want, scPick(got, want)); diff != "" {
		t.Errorf("SENTINEL MASTER mymaster after the merge (-want +sentinel):\n%s", diff)
	}
	// Sentinel rewrites the merged file on start; it still parses, without the peer.
	if err := sc0.FlushConfig(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f, err = scParseFile(confPath(0))
	if err != nil {
		t.Fatalf("the file Sentinel rewrote from the merge: %v", err)
	}
	if m, _ := f.Master("mymaster"); len(m.KnownSentinels) != 0 || m.ConfigEpoch != before.ConfigEpoch {
		t.Errorf("after Sentinel's rewrite: known sentinels %v, config-epoch %d", m.KnownSentinels, m.ConfigEpoch)
	}
}

func scPick(m, keys map[string]string) map[string]string {
	out := make(map[string]string, len(keys))
	for k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

func scParseFile(path string) (*sentinelconf.File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := sentinelconf.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}
