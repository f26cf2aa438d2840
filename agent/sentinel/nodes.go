package sentinel

import (
	"context"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// redisNode is the few calls sentinel mode makes on a redis-server; the
// go-redis adapter (goredis.go) implements it, unit tests fake it.
type redisNode interface {
	// Ping succeeds while redis-server answers, LOADING included.
	Ping(ctx context.Context) error
	Replication(ctx context.Context) (redisx.ReplInfo, error)
	// ReplicaOf points the server at host:port; host "" means NO ONE.
	ReplicaOf(ctx context.Context, host string, port int) error
	PauseWrites(ctx context.Context, d time.Duration) error
	Unpause(ctx context.Context) error
	// KillNormalClients drops client connections (not replicas, not pub/sub
	// of Sentinels) so paused writes fail instead of vanishing.
	KillNormalClients(ctx context.Context) error
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
	Close() error
}

// sentinelNode is the few calls sentinel mode makes on a redis-sentinel.
type sentinelNode interface {
	// MasterAddr is SENTINEL GET-MASTER-ADDR-BY-NAME; ok is false when the
	// Sentinel monitors no master of that name.
	MasterAddr(ctx context.Context, name string) (host string, port int, ok bool, err error)
	// Monitor replaces whatever the Sentinel monitors under name with
	// host:port and re-applies the settings (quorum, timings, auth-pass).
	Monitor(ctx context.Context, name, host string, port int, s monitorSettings) error
	// ApplyPassword sets the password the Sentinel uses for the master
	// (auth-pass), for its peers (sentinel-pass) and requires from clients.
	ApplyPassword(ctx context.Context, name, password string) error
	// ACLPasswords lists a user's password hashes (hex SHA-256).
	ACLPasswords(ctx context.Context, user string) ([]string, error)
	// ACLDryRun is ACL DRYRUN: "" when user may run cmd, else why not.
	ACLDryRun(ctx context.Context, user string, cmd []string) (string, error)
	// AcceptPassword makes each user accept pw too, and saves the file (a
	// restarted Sentinel accepts both).
	AcceptPassword(ctx context.Context, users []string, pw string) error
	// SwitchPassword sets the password the Sentinel uses for the master
	// (auth-pass, when it monitors one) and its peers (sentinel-pass).
	SwitchPassword(ctx context.Context, name, pw string) error
	// SentinelPass is SENTINEL CONFIG GET sentinel-pass: the password
	// the Sentinel logs in to its peers with.
	SentinelPass(ctx context.Context) (string, error)
	// OnlyPassword leaves pw each user's one password, and saves the
	// file.
	OnlyPassword(ctx context.Context, users []string, pw string) error
	Failover(ctx context.Context, name string) error
	// Reset is SENTINEL RESET: forget replicas and peers and rediscover
	// them from the master at once (its next INFO), not in up to 10s.
	Reset(ctx context.Context, name string) error
	// SwitchMaster delivers a value for every +switch-master message until
	// ctx ends; the channel closes then.
	SwitchMaster(ctx context.Context) <-chan struct{}
	// FailingOver: the Sentinel is failing over the master of name.
	FailingOver(ctx context.Context, name string) (bool, error)
	// Members is SENTINEL MASTER, SENTINELS and REPLICAS of name; ok is
	// false when the Sentinel monitors no master of that name.
	Members(ctx context.Context, name string) (ms sentinelMembers, ok bool, err error)
	// SetQuorum is SENTINEL SET name quorum n.
	SetQuorum(ctx context.Context, name string, n int) error
	// Shutdown stops the Sentinel process (its container restarts it):
	// the only way to make redis-sentinel load renewed TLS files.
	Shutdown(ctx context.Context) error
	Close() error
}

// monitorSettings is what SENTINEL MONITOR forgets and the agent re-applies.
type monitorSettings struct {
	Quorum          int
	DownAfter       time.Duration
	FailoverTimeout time.Duration
	ParallelSyncs   int
	AuthPass        string
	AuthUser        string // "": the default user
}
