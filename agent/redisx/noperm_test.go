package redisx

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

// A command refused to the agent's user names the user and the fix, in a
// single command and in a pipeline; other errors pass unchanged.
func TestNoPermHook(t *testing.T) {
	proctest.NeedPrograms(t, "redis-server")
	const ip = "127.0.97.20"
	proctest.StartEngineServer(t, "redis-server", ip, "user ha-agent on >pw -@all +ping +get ~*")
	d := Dial{User: "ha-agent", Password: func() string { return "pw" }, Timeout: time.Second}
	c := redis.NewClient(d.Options(ip + ":6379"))
	defer c.Close()
	c.AddHook(NoPermHook(d.User))
	ctx := context.Background()
	err := c.Do(ctx, "FLUSHALL").Err()
	var np *NoPermError
	if !errors.As(err, &np) || np.User != "ha-agent" || !strings.Contains(err.Error(), `ACL user "ha-agent": NOPERM`) || !strings.Contains(err.Error(), `README, "ACL users"`) {
		t.Errorf("FLUSHALL as ha-agent: %v, want a NoPermError naming the user and the fix", err)
	}
	p := c.Pipeline()
	fl := p.FlushAll(ctx)
	ping := p.Ping(ctx)
	_, _ = p.Exec(ctx)
	if !errors.As(fl.Err(), &np) || ping.Err() != nil {
		t.Errorf("pipeline: FLUSHALL %v, PING %v; want a NoPermError and no error", fl.Err(), ping.Err())
	}
	if err := c.Get(ctx, "missing").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET of a missing key: %v, want redis.Nil unchanged", err)
	}
	if NoPermHook("") != nil {
		t.Error("a hook for the default user")
	}
}
