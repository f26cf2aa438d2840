package sentinel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// dialRedis is a redis-server client dialed as d says.
func dialRedis(d redisx.Dial, host string, port int) *goRedisNode {
	c := redis.NewClient(d.Options(net.JoinHostPort(host, strconv.Itoa(port))))
	if h := redisx.NoPermHook(d.User); h != nil {
		c.AddHook(h)
	}
	return &goRedisNode{c: c}
}

// dialSentinel is a Sentinel client dialed as d says.
func dialSentinel(d redisx.Dial, host string, port int) *goSentinelNode {
	c := redis.NewSentinelClient(d.Options(net.JoinHostPort(host, strconv.Itoa(port))))
	if h := redisx.NoPermHook(d.User); h != nil {
		c.AddHook(h)
	}
	return &goSentinelNode{c: c}
}

// goRedisNode adapts go-redis to redisNode.
type goRedisNode struct{ c *redis.Client }

var _ redisNode = (*goRedisNode)(nil)

// newRedisNode is a plaintext client with no API fallback.
func newRedisNode(host string, port int, password func() string, timeout time.Duration) *goRedisNode {
	return dialRedis(redisx.Dial{Password: password, Timeout: timeout}, host, port)
}

func (n *goRedisNode) addr() string { return n.c.Options().Addr }

func (n *goRedisNode) Ping(ctx context.Context) error {
	err := n.c.Ping(ctx).Err()
	if err != nil && strings.HasPrefix(err.Error(), "LOADING") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("PING redis-server %s: %w", n.addr(), err)
	}
	return nil
}

func (n *goRedisNode) Replication(ctx context.Context) (redisx.ReplInfo, error) {
	// INFO server rides along: the engine for /status and the metrics
	// costs no extra round trip; persistence and keyspace tell an election
	// what the data files held (sentinelMode.effective).
	text, err := n.c.Info(ctx, "server", "persistence", "replication", "keyspace").Result()
	if err != nil {
		return redisx.ReplInfo{}, fmt.Errorf("INFO replication on redis-server %s: %w", n.addr(), err)
	}
	r, err := redisx.ParseReplInfo(text)
	if err != nil {
		return r, fmt.Errorf("redis-server %s: %w", n.addr(), err)
	}
	return r, nil
}

func (n *goRedisNode) ReplicaOf(ctx context.Context, host string, port int) error {
	h, p := "NO", "ONE"
	if host != "" {
		h, p = host, strconv.Itoa(port)
	}
	if err := n.c.Do(ctx, "REPLICAOF", h, p).Err(); err != nil {
		return fmt.Errorf("REPLICAOF %s %s on redis-server %s: %w", h, p, n.addr(), err)
	}
	return nil
}

func (n *goRedisNode) PauseWrites(ctx context.Context, d time.Duration) error {
	if err := n.c.Do(ctx, "CLIENT", "PAUSE", d.Milliseconds(), "WRITE").Err(); err != nil {
		return fmt.Errorf("CLIENT PAUSE WRITE on redis-server %s: %w", n.addr(), err)
	}
	return nil
}

func (n *goRedisNode) Unpause(ctx context.Context) error {
	if err := n.c.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		return fmt.Errorf("CLIENT UNPAUSE on redis-server %s: %w", n.addr(), err)
	}
	return nil
}

func (n *goRedisNode) KillNormalClients(ctx context.Context) error {
	// SKIPME yes keeps the agent's own connection.
	if err := n.c.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
		return fmt.Errorf("CLIENT KILL TYPE normal on redis-server %s: %w", n.addr(), err)
	}
	return nil
}

func (n *goRedisNode) ConfigSet(ctx context.Context, param, value string) error {
	if err := n.c.ConfigSet(ctx, param, value).Err(); err != nil {
		return fmt.Errorf("CONFIG SET %s on redis-server %s: %w", param, n.addr(), err)
	}
	return nil
}

func (n *goRedisNode) ConfigGet(ctx context.Context, param string) (string, error) {
	m, err := n.c.ConfigGet(ctx, param).Result()
	if err != nil {
		return "", fmt.Errorf("CONFIG GET %s on redis-server %s: %w", param, n.addr(), err)
	}
	return m[param], nil
}

func (n *goRedisNode) ACLPasswords(ctx context.Context, user string) ([]string, error) {
	return aclPasswords(ctx, n.c.Do(ctx, "ACL", "GETUSER", user), user, "redis-server "+n.addr())
}

func (n *goRedisNode) ACLAddPassword(ctx context.Context, user, pw string) error {
	if err := n.c.Do(ctx, "ACL", "SETUSER", user, ">"+pw).Err(); err != nil {
		return fmt.Errorf("ACL SETUSER %s (add a password) on redis-server %s: %w", user, n.addr(), err)
	}
	return nil
}

func (n *goRedisNode) ACLOnlyPassword(ctx context.Context, user, pw string) error {
	if err := n.c.Do(ctx, "ACL", "SETUSER", user, "resetpass", ">"+pw).Err(); err != nil {
		return fmt.Errorf("ACL SETUSER %s (keep one password) on redis-server %s: %w", user, n.addr(), err)
	}
	return nil
}

func (n *goRedisNode) ACLSetUser(ctx context.Context, user string, rules []string) error {
	args := []any{"ACL", "SETUSER", user}
	for _, r := range rules {
		args = append(args, r)
	}
	return n.c.Do(ctx, args...).Err()
}

func (n *goRedisNode) ACLDryRun(ctx context.Context, user string, cmd []string) (string, error) {
	return aclDryRun(ctx, n.c.Process, user, cmd)
}

func (n *goRedisNode) Close() error { return n.c.Close() }

// aclPasswords is redisx.ACLPasswords with the server named in errors.
func aclPasswords(_ context.Context, cmd *redis.Cmd, user, where string) ([]string, error) {
	ps, err := redisx.ACLPasswords(cmd)
	if err != nil {
		return nil, fmt.Errorf("ACL GETUSER %s on %s: %w", user, where, err)
	}
	return ps, nil
}

// aclDryRun asks whether user may run cmd: "" when it may, else the
// server's reason. err is a failure of the ACL DRYRUN itself (the caller
// may not run it, or the user does not exist).
func aclDryRun(ctx context.Context, process func(context.Context, redis.Cmder) error, user string, cmd []string) (string, error) {
	args := []any{"ACL", "DRYRUN", user}
	for _, a := range cmd {
		args = append(args, a)
	}
	c := redis.NewStringCmd(ctx, args...)
	if err := process(ctx, c); err != nil {
		return "", err
	}
	if v := c.Val(); v != "OK" {
		return v, nil
	}
	return "", nil
}

// goSentinelNode adapts go-redis's SentinelClient to sentinelNode.
type goSentinelNode struct{ c *redis.SentinelClient }

var _ sentinelNode = (*goSentinelNode)(nil)

// newSentinelNode is a plaintext client with no API fallback.
func newSentinelNode(host string, port int, password func() string, timeout time.Duration) *goSentinelNode {
	return dialSentinel(redisx.Dial{Password: password, Timeout: timeout}, host, port)
}

func (n *goSentinelNode) addr() string { return n.c.String() }

func (n *goSentinelNode) MasterAddr(ctx context.Context, name string) (string, int, bool, error) {
	v, err := n.c.GetMasterAddrByName(ctx, name).Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME %s on %s: %w", name, n.addr(), err)
	}
	if len(v) != 2 {
		return "", 0, false, fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME %s on %s answered %q, want host and port", name, n.addr(), v)
	}
	port, err := strconv.Atoi(v[1])
	if err != nil {
		return "", 0, false, fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME %s on %s: port %q: %w", name, n.addr(), v[1], err)
	}
	return v[0], port, true, nil
}

func (n *goSentinelNode) Monitor(ctx context.Context, name, host string, port int, s monitorSettings) error {
	// REMOVE fails with "No such master" on a Sentinel monitoring nothing.
	if err := n.c.Remove(ctx, name).Err(); err != nil && !strings.Contains(err.Error(), "No such master") {
		return fmt.Errorf("SENTINEL REMOVE %s on %s: %w", name, n.addr(), err)
	}
	if err := n.c.Monitor(ctx, name, host, strconv.Itoa(port), strconv.Itoa(s.Quorum)).Err(); err != nil {
		return fmt.Errorf("SENTINEL MONITOR %s %s %d on %s: %w", name, host, port, n.addr(), err)
	}
	args := []any{"SENTINEL", "SET", name,
		"down-after-milliseconds", s.DownAfter.Milliseconds(),
		"failover-timeout", s.FailoverTimeout.Milliseconds(),
		"parallel-syncs", s.ParallelSyncs}
	if s.AuthPass != "" {
		args = append(args, "auth-pass", s.AuthPass)
	}
	if s.AuthUser != "" {
		args = append(args, "auth-user", s.AuthUser)
	}
	if err := n.c.Process(ctx, redis.NewStatusCmd(ctx, args...)); err != nil {
		return fmt.Errorf("SENTINEL SET %s (timings, auth-pass) on %s: %w", name, n.addr(), err)
	}
	return nil
}

func (n *goSentinelNode) ApplyPassword(ctx context.Context, name, password string) error {
	// The ACL change first: the SENTINEL SETs below make Sentinel rewrite
	// its file, which then carries the new default-user password too.
	acl := []any{"ACL", "SETUSER", "default", "on", "resetpass", "nopass"}
	if password != "" {
		acl = []any{"ACL", "SETUSER", "default", "on", "resetpass", ">" + password}
	}
	if err := n.c.Process(ctx, redis.NewStatusCmd(ctx, acl...)); err != nil {
		return fmt.Errorf("ACL SETUSER default (requirepass) on %s: %w", n.addr(), err)
	}
	if err := n.c.Set(ctx, name, "auth-pass", password).Err(); err != nil {
		return fmt.Errorf("SENTINEL SET %s auth-pass on %s: %w", name, n.addr(), err)
	}
	if err := n.c.Process(ctx, redis.NewStatusCmd(ctx, "SENTINEL", "CONFIG", "SET", "sentinel-pass", password)); err != nil {
		return fmt.Errorf("SENTINEL CONFIG SET sentinel-pass on %s: %w", n.addr(), err)
	}
	return nil
}

func (n *goSentinelNode) ACLPasswords(ctx context.Context, user string) ([]string, error) {
	cmd := redis.NewCmd(ctx, "ACL", "GETUSER", user)
	_ = n.c.Process(ctx, cmd)
	return aclPasswords(ctx, cmd, user, "Sentinel "+n.addr())
}

func (n *goSentinelNode) ACLDryRun(ctx context.Context, user string, cmd []string) (string, error) {
	return aclDryRun(ctx, n.c.Process, user, cmd)
}

func (n *goSentinelNode) AcceptPassword(ctx context.Context, users []string, pw string) error {
	for _, u := range users {
		if err := n.c.Process(ctx, redis.NewStatusCmd(ctx, "ACL", "SETUSER", u, ">"+pw)); err != nil {
			return fmt.Errorf("ACL SETUSER %s (add a password) on %s: %w", u, n.addr(), err)
		}
	}
	return n.flushConfig(ctx)
}

func (n *goSentinelNode) SwitchPassword(ctx context.Context, name, pw string) error {
	// A Sentinel that monitors nothing yet gets auth-pass with its
	// SENTINEL MONITOR (the agent's outgoing password then).
	if err := n.c.Set(ctx, name, "auth-pass", pw).Err(); err != nil && !strings.Contains(err.Error(), "No such master") {
		return fmt.Errorf("SENTINEL SET %s auth-pass on %s: %w", name, n.addr(), err)
	}
	if err := n.c.Process(ctx, redis.NewStatusCmd(ctx, "SENTINEL", "CONFIG", "SET", "sentinel-pass", pw)); err != nil {
		return fmt.Errorf("SENTINEL CONFIG SET sentinel-pass on %s: %w", n.addr(), err)
	}
	return nil
}

func (n *goSentinelNode) SentinelPass(ctx context.Context) (string, error) {
	cmd := redis.NewStringSliceCmd(ctx, "SENTINEL", "CONFIG", "GET", "sentinel-pass")
	if err := n.c.Process(ctx, cmd); err != nil {
		return "", fmt.Errorf("SENTINEL CONFIG GET sentinel-pass on %s: %w", n.addr(), err)
	}
	v := cmd.Val()
	if len(v) != 2 {
		return "", fmt.Errorf("SENTINEL CONFIG GET sentinel-pass on %s: %d values, want name and value", n.addr(), len(v))
	}
	return v[1], nil
}

func (n *goSentinelNode) OnlyPassword(ctx context.Context, users []string, pw string) error {
	for _, u := range users {
		args := []any{"ACL", "SETUSER", u, "resetpass", ">" + pw}
		if u == "default" {
			args = []any{"ACL", "SETUSER", u, "on", "resetpass", ">" + pw}
		}
		if err := n.c.Process(ctx, redis.NewStatusCmd(ctx, args...)); err != nil {
			return fmt.Errorf("ACL SETUSER %s (keep one password) on %s: %w", u, n.addr(), err)
		}
	}
	return n.flushConfig(ctx)
}

// flushConfig makes Sentinel rewrite its file (an ACL change alone does
// not), so a restarted Sentinel accepts what this one does.
func (n *goSentinelNode) flushConfig(ctx context.Context) error {
	if err := n.c.Process(ctx, redis.NewStatusCmd(ctx, "SENTINEL", "FLUSHCONFIG")); err != nil {
		return fmt.Errorf("SENTINEL FLUSHCONFIG on %s: %w", n.addr(), err)
	}
	return nil
}

func (n *goSentinelNode) Failover(ctx context.Context, name string) error {
	if err := n.c.Failover(ctx, name).Err(); err != nil {
		return fmt.Errorf("SENTINEL FAILOVER %s on %s: %w", name, n.addr(), err)
	}
	return nil
}

func (n *goSentinelNode) Reset(ctx context.Context, name string) error {
	if err := n.c.Reset(ctx, name).Err(); err != nil {
		return fmt.Errorf("SENTINEL RESET %s on %s: %w", name, n.addr(), err)
	}
	return nil
}

func (n *goSentinelNode) SwitchMaster(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			ps := n.c.Subscribe(ctx, "+switch-master")
			ch := ps.Channel()
			for open := true; open; {
				select {
				case <-ctx.Done():
					open = false
				case _, open = <-ch:
					select {
					case out <- struct{}{}:
					default:
					}
				}
			}
			_ = ps.Close()
		}
	}()
	return out
}

func (n *goSentinelNode) FailingOver(ctx context.Context, name string) (bool, error) {
	m, err := n.c.Master(ctx, name).Result()
	if err != nil {
		return false, fmt.Errorf("SENTINEL MASTER %s on %s: %w", name, n.addr(), err)
	}
	return strings.Contains(m["flags"], "failover_in_progress"), nil
}

func (n *goSentinelNode) Members(ctx context.Context, name string) (sentinelMembers, bool, error) {
	m, err := n.c.Master(ctx, name).Result()
	if err != nil {
		if strings.Contains(err.Error(), "No such master") {
			return sentinelMembers{}, false, nil
		}
		return sentinelMembers{}, false, fmt.Errorf("SENTINEL MASTER %s on %s: %w", name, n.addr(), err)
	}
	q, err := strconv.Atoi(m["quorum"])
	if err != nil {
		return sentinelMembers{}, false, fmt.Errorf("SENTINEL MASTER %s on %s: quorum %q: %w", name, n.addr(), m["quorum"], err)
	}
	ms := sentinelMembers{Quorum: q, Flags: m["flags"], FailoverState: m["failover-state"]}
	ss, err := n.c.Sentinels(ctx, name).Result()
	if err != nil {
		return sentinelMembers{}, false, fmt.Errorf("SENTINEL SENTINELS %s on %s: %w", name, n.addr(), err)
	}
	for _, s := range ss {
		ms.Sentinels = append(ms.Sentinels, memberOf(s))
	}
	rs, err := n.c.Replicas(ctx, name).Result()
	if err != nil {
		return sentinelMembers{}, false, fmt.Errorf("SENTINEL REPLICAS %s on %s: %w", name, n.addr(), err)
	}
	for _, r := range rs {
		ms.Replicas = append(ms.Replicas, memberOf(r))
	}
	return ms, true, nil
}

// memberOf is the address of one SENTINEL SENTINELS or REPLICAS entry; a
// port that does not parse is 0, which names no pod by port.
func memberOf(fields map[string]string) memberAddr {
	port, _ := strconv.Atoi(fields["port"])
	return memberAddr{Host: fields["ip"], Port: port}
}

func (n *goSentinelNode) SetQuorum(ctx context.Context, name string, q int) error {
	if err := n.c.Set(ctx, name, "quorum", strconv.Itoa(q)).Err(); err != nil {
		return fmt.Errorf("SENTINEL SET %s quorum %d on %s: %w", name, q, n.addr(), err)
	}
	return nil
}

func (n *goSentinelNode) Shutdown(ctx context.Context) error {
	err := n.c.Process(ctx, redis.NewStatusCmd(ctx, "SHUTDOWN"))
	// Success closes the connection; an answer means Sentinel refused.
	if err == nil {
		return fmt.Errorf("SHUTDOWN on %s: Sentinel answered instead of exiting", n.addr())
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	return fmt.Errorf("SHUTDOWN on %s: %w", n.addr(), err)
}

func (n *goSentinelNode) Close() error { return n.c.Close() }
