package sentinelconf

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

// TestSplitArgsMatchesRedis feeds every splitCases line to redis-cli, which
// splits the lines it reads from stdin with sdssplitargs like the config
// loader does, and compares what a real redis-server received.
func TestSplitArgsMatchesRedis(t *testing.T) {
	proctest.NeedPrograms(t, "redis-server", "redis-cli")
	const host, port = "127.0.20.61", "6391"
	dir := t.TempDir()
	proctest.Start(t, filepath.Join(dir, "redis.log"), "redis-server", "--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", dir)
	proctest.WaitPing(t, host+":"+port, "", 30*time.Second)
	rdb := redis.NewClient(&redis.Options{Addr: host + ":" + port})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, tc := range splitCases {
		t.Run(name, func(t *testing.T) {
			if err := rdb.Del(ctx, "k").Err(); err != nil {
				t.Fatal(err)
			}
			cli := exec.CommandContext(ctx, "redis-cli", "-h", host, "-p", port)
			cli.Stdin = strings.NewReader("RPUSH k " + tc.line + "\n")
			out, err := cli.CombinedOutput()
			if err != nil {
				t.Fatalf("redis-cli: %v: %s", err, out)
			}
			redisRefused := strings.Contains(string(out), "Invalid argument(s)")
			if redisRefused != tc.wantErr {
				t.Fatalf("Redis refused %q: %v (%s), the case says %v", tc.line, redisRefused, out, tc.wantErr)
			}
			if redisRefused {
				return
			}
			got, err := rdb.LRange(ctx, "k", 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			// RPUSH k <line>: the list holds the line's arguments.
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Redis split %q differently (-case +redis):\n%s", tc.line, diff)
			}
		})
	}
}
