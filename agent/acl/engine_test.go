package acl

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
)

// TestRulesOnRealServers loads every rule set into a real redis-server
// and Sentinel of each engine on this machine (Redis 7.0, Valkey 8.0),
// and asks ACL DRYRUN that each user may run every command its role
// needs, and none of the data or admin commands it must not.
func TestRulesOnRealServers(t *testing.T) {
	for i, e := range proctest.EngineServers() {
		sentinelBin := strings.TrimSuffix(e.Bin, "-server") + "-sentinel"
		t.Run(e.Engine, func(t *testing.T) {
			proctest.NeedPrograms(t, e.Bin, sentinelBin)
			ip := fmt.Sprintf("127.0.97.%d", 10+i)
			proctest.StartEngineServer(t, e.Bin, ip)
			sentinel := startSentinel(t, sentinelBin, ip)
			server := redis.NewClient(&redis.Options{Addr: ip + ":6379", Protocol: 2, DisableIdentity: true})
			defer server.Close()
			defer sentinel.Close()
			u := Users{Agent: "ha-agent", Replication: "ha-repl", Sentinel: "ha-sentinel"}
			sides := []struct {
				name   string
				c      *redis.Client
				mode   Mode
				side   Side
				denied []Command
			}{
				{"redis-server, sentinel mode", server, ModeSentinel, Redis, []Command{{"flushall"}, {"get", "k"}, {"keys", "*"}, {"acl", "deluser", "x"}, {"debug", "sleep", "0"}, {"shutdown"}, {"module", "list"}}},
				{"redis-server, cluster mode", server, ModeCluster, Redis, []Command{{"flushall"}, {"get", "k"}, {"set", "k", "v"}, {"acl", "deluser", "x"}, {"shutdown"}}},
				{"Sentinel", sentinel, ModeSentinel, Sentinel, []Command{{"info"}, {"acl", "deluser", "x"}, {"sentinel", "debug"}}},
			}
			ctx := context.Background()
			for _, s := range sides {
				for _, m := range u.On(s.mode, s.side) {
					args := []any{"ACL", "SETUSER", m.Name}
					for _, r := range strings.Fields(m.SetUser([]string{"pw"})) {
						args = append(args, r)
					}
					if err := s.c.Do(ctx, args...).Err(); err != nil {
						t.Errorf("%s: ACL SETUSER %s %s: %v", s.name, m.Name, m.Rules.Rules, err)
						continue
					}
					dry := func(ctx context.Context, user string, cmd []string) (string, error) {
						a := []any{"ACL", "DRYRUN", user}
						for _, x := range cmd {
							a = append(a, x)
						}
						v, err := s.c.Do(ctx, a...).Text()
						if v == "OK" {
							v = ""
						}
						return v, err
					}
					if err := Check(ctx, s.name, []Managed{m}, dry); err != nil {
						t.Errorf("%s: %v", s.name, err)
					}
					if m.Role != "agent" {
						continue
					}
					for _, cmd := range s.denied {
						if why, err := dry(ctx, m.Name, cmd); err == nil && why == "" {
							t.Errorf("%s: the agent user may run %q", s.name, cmd.String())
						}
					}
				}
			}
		})
	}
}

func startSentinel(t *testing.T, bin, ip string) *redis.Client {
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(conf, []byte("bind "+ip+"\nport 26379\nprotected-mode no\ndir "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	proctest.Start(t, filepath.Join(dir, "sentinel.log"), bin, conf)
	proctest.WaitPing(t, ip+":26379", "", 10*time.Second)
	return redis.NewClient(&redis.Options{Addr: ip + ":26379", Protocol: 2, DisableIdentity: true})
}
