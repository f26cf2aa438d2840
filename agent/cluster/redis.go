package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
)

// clusterNodeAPI is what cluster mode asks of one redis-server. The go-redis
// adapter below implements it; unit tests use fakes.
type clusterNodeAPI interface {
	Ping(ctx context.Context) error
	Nodes(ctx context.Context) ([]clusterNode, error)
	// ClusterInfo is CLUSTER INFO, with INFO server's fields where the
	// adapter could read them.
	ClusterInfo(ctx context.Context) (map[string]string, error)
	Replication(ctx context.Context) (redisx.ReplInfo, error)
	DBSize(ctx context.Context) (int64, error)
	Meet(ctx context.Context, ip string, port int) error
	AddSlots(ctx context.Context, rs []slotRange) error
	Replicate(ctx context.Context, masterID string) error
	Forget(ctx context.Context, id string) error
	Failover(ctx context.Context) error
	// SetSlot runs CLUSTER SETSLOT <slot> <state> [id] for each slot in
	// one round trip; errs has one entry per slot.
	SetSlot(ctx context.Context, slots []int, state, id string) (errs []error, err error)
	// KeysInSlots returns up to count keys of each slot.
	KeysInSlots(ctx context.Context, slots []int, count int) (map[int][]string, error)
	// Migrate logs in to the target as user ("": the default user) with
	// password ("": no auth).
	Migrate(ctx context.Context, ip string, port int, keysBySlot map[int][]string, user, password string, timeout time.Duration) error
	ConfigSet(ctx context.Context, param, value string) error
	// ConfigGet is CONFIG GET of one parameter.
	ConfigGet(ctx context.Context, param string) (string, error)
	// ACLPasswords lists a user's password hashes (hex SHA-256).
	ACLPasswords(ctx context.Context, user string) ([]string, error)
	// ACLAddPassword makes a user accept pw too.
	ACLAddPassword(ctx context.Context, user, pw string) error
	// ACLOnlyPassword leaves pw a user's one password, in one command.
	ACLOnlyPassword(ctx context.Context, user, pw string) error
	// ACLDryRun is ACL DRYRUN: "" when user may run cmd, else why not.
	ACLDryRun(ctx context.Context, user string, cmd []string) (string, error)
	// ACLSetUser is ACL SETUSER user rules...
	ACLSetUser(ctx context.Context, user string, rules []string) error
}

// clusterOptions: one small pool, short timeouts, no retries (the next pass
// retries), RESP2 and no CLIENT SETINFO (Redis 7.0 lacks it). The password
// is read at each connect, so a rotated Secret applies to new connections.
func clusterOptions(addr, user string, password func() string) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		Protocol:              2,
		DisableIdentity:       true,
		CredentialsProvider:   func() (string, string) { return user, password() },
		DialTimeout:           time.Second,
		ReadTimeout:           3 * time.Second,
		WriteTimeout:          3 * time.Second,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		PoolSize:              3,
	}
}

type goClusterNode struct{ c *redis.Client }

var _ clusterNodeAPI = (*goClusterNode)(nil)

func (n *goClusterNode) Ping(ctx context.Context) error { return n.c.Ping(ctx).Err() }

func (n *goClusterNode) Nodes(ctx context.Context) ([]clusterNode, error) {
	s, err := n.c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	return parseClusterNodes(s)
}

// ClusterInfo is CLUSTER INFO with INFO server's fields (the engine and its
// version) merged in: both go in one pipelined round trip, and their field
// names do not overlap. A failed INFO server leaves those fields out.
func (n *goClusterNode) ClusterInfo(ctx context.Context) (map[string]string, error) {
	pipe := n.c.Pipeline()
	ci := pipe.ClusterInfo(ctx)
	si := pipe.Info(ctx, "server")
	_, _ = pipe.Exec(ctx)
	s, err := ci.Result()
	if err != nil {
		return redisx.ParseInfo(s), err
	}
	out := redisx.ParseInfo(s)
	if srv, err := si.Result(); err == nil {
		maps.Copy(out, redisx.ParseInfo(srv))
	}
	return out, nil
}

func (n *goClusterNode) Replication(ctx context.Context) (redisx.ReplInfo, error) {
	s, err := n.c.Info(ctx, "replication").Result()
	if err != nil {
		return redisx.ReplInfo{}, err
	}
	return redisx.ParseReplInfo(s)
}

func (n *goClusterNode) DBSize(ctx context.Context) (int64, error) { return n.c.DBSize(ctx).Result() }

func (n *goClusterNode) Meet(ctx context.Context, ip string, port int) error {
	err := n.c.ClusterMeet(ctx, ip, strconv.Itoa(port)).Err()
	if err != nil && strings.Contains(err.Error(), "Invalid node address") {
		return nil // a handshake with that address is already under way
	}
	return err
}

func (n *goClusterNode) AddSlots(ctx context.Context, rs []slotRange) error {
	args := []any{"cluster", "addslotsrange"}
	for _, r := range rs {
		args = append(args, r.From, r.To)
	}
	return n.c.Do(ctx, args...).Err()
}

func (n *goClusterNode) Replicate(ctx context.Context, masterID string) error {
	return n.c.ClusterReplicate(ctx, masterID).Err()
}

func (n *goClusterNode) Forget(ctx context.Context, id string) error {
	err := n.c.ClusterForget(ctx, id).Err()
	if err != nil && strings.Contains(err.Error(), "Unknown node") {
		return nil
	}
	return err
}

func (n *goClusterNode) Failover(ctx context.Context) error { return n.c.ClusterFailover(ctx).Err() }

func (n *goClusterNode) ConfigSet(ctx context.Context, param, value string) error {
	return n.c.ConfigSet(ctx, param, value).Err()
}

func (n *goClusterNode) ConfigGet(ctx context.Context, param string) (string, error) {
	m, err := n.c.ConfigGet(ctx, param).Result()
	if err != nil {
		return "", err
	}
	return m[param], nil
}

func (n *goClusterNode) ACLPasswords(ctx context.Context, user string) ([]string, error) {
	return redisx.ACLPasswords(n.c.Do(ctx, "ACL", "GETUSER", user))
}

func (n *goClusterNode) ACLAddPassword(ctx context.Context, user, pw string) error {
	return n.c.Do(ctx, "ACL", "SETUSER", user, ">"+pw).Err()
}

func (n *goClusterNode) ACLOnlyPassword(ctx context.Context, user, pw string) error {
	return n.c.Do(ctx, "ACL", "SETUSER", user, "resetpass", ">"+pw).Err()
}

func (n *goClusterNode) ACLSetUser(ctx context.Context, user string, rules []string) error {
	args := []any{"ACL", "SETUSER", user}
	for _, r := range rules {
		args = append(args, r)
	}
	return n.c.Do(ctx, args...).Err()
}

func (n *goClusterNode) ACLDryRun(ctx context.Context, user string, cmd []string) (string, error) {
	args := []any{"ACL", "DRYRUN", user}
	for _, a := range cmd {
		args = append(args, a)
	}
	v, err := n.c.Do(ctx, args...).Text()
	if err != nil || v == "OK" {
		return "", err
	}
	return v, nil
}

func (n *goClusterNode) SetSlot(ctx context.Context, slots []int, state, id string) ([]error, error) {
	p := n.c.Pipeline()
	cmds := make([]*redis.StatusCmd, len(slots))
	for i, s := range slots {
		args := []any{"cluster", "setslot", s, state}
		if id != "" {
			args = append(args, id)
		}
		cmds[i] = redis.NewStatusCmd(ctx, args...)
		_ = p.Process(ctx, cmds[i])
	}
	_, err := p.Exec(ctx)
	errs := make([]error, len(slots))
	for i, c := range cmds {
		errs[i] = c.Err()
	}
	var rerr redis.Error
	if err != nil && !errors.As(err, &rerr) {
		return errs, err // the connection failed, not a command
	}
	return errs, nil
}

func (n *goClusterNode) KeysInSlots(ctx context.Context, slots []int, count int) (map[int][]string, error) {
	p := n.c.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(slots))
	for i, s := range slots {
		cmds[i] = p.ClusterGetKeysInSlot(ctx, s, count)
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, err
	}
	out := map[int][]string{}
	for i, c := range cmds {
		if ks := c.Val(); len(ks) > 0 {
			out[slots[i]] = ks
		}
	}
	return out, nil
}

// Migrate moves keys with REPLACE: while a slot is migrating, writes to keys
// that still exist go to the source, so the source's copy is the current
// one; a copy already on the target can only come from an earlier MIGRATE
// whose reply was lost. Cluster mode wants one slot per MIGRATE, so the
// slots go as one pipeline of MIGRATEs.
func (n *goClusterNode) Migrate(ctx context.Context, ip string, port int, keysBySlot map[int][]string, user, password string, timeout time.Duration) error {
	p := n.c.Pipeline()
	var cmds []*redis.Cmd
	for _, slot := range sortedKeys(keysBySlot) {
		args := []any{"migrate", ip, port, "", 0, timeout.Milliseconds(), "replace"}
		switch {
		case password != "" && user != "":
			args = append(args, "auth2", user, password)
		case password != "":
			args = append(args, "auth", password)
		}
		args = append(args, "keys")
		for _, k := range keysBySlot[slot] {
			args = append(args, k)
		}
		cmds = append(cmds, p.Do(ctx, args...))
	}
	_, _ = p.Exec(ctx)
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) && err.Error() != "NOKEY" {
			return fmt.Errorf("MIGRATE to %s: %w", net.JoinHostPort(ip, strconv.Itoa(port)), err)
		}
	}
	return nil
}

// clusterConns keeps one client per address for the agent's lifetime.
type clusterConns struct {
	mu       sync.Mutex
	user     string // "": the default user
	password func() string
	tls      *secrets.TLSFiles // nil: plaintext
	byAddr   map[string]*goClusterNode
	// names maps a node's IP to the name its certificate is checked
	// against (the pod FQDN), learnt before dialing it.
	names map[string]string
}

func newClusterConns(user string, password func() string, tlsFiles *secrets.TLSFiles) *clusterConns {
	return &clusterConns{user: user, password: password, tls: tlsFiles, byAddr: map[string]*goClusterNode{}, names: map[string]string{}}
}

// name records the pod FQDN of ip: nodes are dialed at their IP (Redis
// 7.0 gossips IPs) and verified under the name their certificate holds.
func (c *clusterConns) name(ip, fqdn string) {
	if fqdn == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names[ip] = fqdn
}

// serverName is the recorded name of ip, else ip itself (which then
// verifies only against a certificate with that IP SAN).
func (c *clusterConns) serverName(ip string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.names[ip]; ok {
		return n
	}
	return ip
}

func (c *clusterConns) get(ip string, port int) clusterNodeAPI {
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.byAddr[addr]
	if !ok {
		o := clusterOptions(addr, c.user, c.password)
		o.Dialer = redisx.Dial{Timeout: o.DialTimeout, TLS: c.tls, ServerName: c.serverName}.Dialer()
		rc := redis.NewClient(o)
		if h := redisx.NoPermHook(c.user); h != nil {
			rc.AddHook(h)
		}
		n = &goClusterNode{c: rc}
		c.byAddr[addr] = n
	}
	return n
}

func (c *clusterConns) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for a, n := range c.byAddr {
		_ = n.c.Close()
		delete(c.byAddr, a)
	}
}
