package workload

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis runs a redis-server on a free loopback port with a password.
func startRedis(t *testing.T, password string) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("%s not in PATH: %v; install it with `make deps` (apt-get install redis-server redis-tools)", "redis-server", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "redis.conf")
	body := fmt.Sprintf("bind 127.0.0.1\nport %d\ndir %s\nsave \"\"\nappendonly no\nrequirepass %s\n", port, dir, password)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := c.Ping(context.Background()).Err(); err == nil {
			return addr
		} else if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not answer: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWriterCountsOnlyExecutedWrites: a connection that fails with a Redis
// error while it is set up (here AUTH; on a cluster LOADING or a Sentinel's
// answer) leaves go-redis's pipelined commands without an error of their
// own. Such a write never reached the server and must not count as OK.
func TestWriterCountsOnlyExecutedWrites(t *testing.T) {
	addr := startRedis(t, "right-pass")
	for _, tc := range []struct {
		name     string
		password string
		wantOK   bool
	}{
		{"wrong password", "wrong-pass", false},
		{"right password", "right-pass", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []Mode{ModeNoWait, ModeWait1, ModeCounter} {
				c := redis.NewClient(&redis.Options{Addr: addr, Password: tc.password, MaxRetries: -1, Protocol: 2})
				w := &Writer{Name: string(mode), Mode: mode, Client: c, Interval: 10 * time.Millisecond, Prefix: "w-" + tc.name, WaitTimeout: 50 * time.Millisecond}
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				h, err := w.Run(ctx)
				cancel()
				c.Close()
				if err != nil {
					t.Fatal(err)
				}
				if len(h.Ops) == 0 {
					t.Fatalf("%s: no attempts", mode)
				}
				ok := 0
				for _, o := range h.Ops {
					if o.OK {
						ok++
					}
					if strings.HasPrefix(o.Err, "run ended: ") {
						continue // cut off by the end of the run
					}
					if o.OK != tc.wantOK {
						t.Fatalf("%s: op %+v: OK = %t, want %t", mode, o, o.OK, tc.wantOK)
					}
					if !tc.wantOK && o.Err == "" {
						t.Fatalf("%s: failed op %+v carries no error", mode, o)
					}
				}
				if tc.wantOK && ok == 0 {
					t.Fatalf("%s: no write answered OK in %d attempts", mode, len(h.Ops))
				}
			}
		})
	}
}
