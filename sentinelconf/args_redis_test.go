package sentinelconf

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

// TestSplitArgsMatchesRedis feeds every splitCases line to redis-cli, which
// splits the lines it reads from stdin with sdssplitargs like the config
// loader does, and compares what a real redis-server received.
func TestSplitArgsMatchesRedis(t *testing.T) {
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed: %v", bin, err)
		}
	}
	const host, port = "127.0.20.61", "6391"
	srv := exec.Command("redis-server", "--bind", host, "--port", port, "--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	rdb := redis.NewClient(&redis.Options{Addr: host + ":" + port})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for rdb.Ping(ctx).Err() != nil {
		if ctx.Err() != nil {
			t.Fatalf("redis-server on %s:%s did not answer PING within 30s", host, port)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
