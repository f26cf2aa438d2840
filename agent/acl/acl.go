package acl

import (
	"fmt"
	"strings"
)

// Users are the ACL users the agent manages. A name "" means that role
// logs in as the default user, as before ACL users existed; every user
// the agent manages logs in with the --password-file password, so one
// rotation (agent/rotation) covers them all.
type Users struct {
	// Agent is the user the agent's own clients log in as, on every
	// redis-server and Sentinel.
	Agent string
	// Replication is masteruser: what a replica logs in to its master as.
	Replication string
	// Sentinel is what Sentinel logs in to redis-servers as (auth-user)
	// and to the other Sentinels as (sentinel-user). Sentinel mode only.
	Sentinel string
	// DefaultOff disables the default user of every redis-server: no
	// login without a user name, and no requirepass.
	DefaultOff bool
	// DefineOnly defines the users on every server but keeps every login
	// the default user's: the first step of turning users on in a running
	// deployment, so that no pod logs in as a user its peers, still on
	// the old configuration, do not have yet.
	DefineOnly bool
}

// Login is the user a role logs in as: its name, or "" (the default
// user) while the users are only defined.
func (u Users) Login(name string) string {
	if u.DefineOnly {
		return ""
	}
	return name
}

// Side is where a user is defined: a redis-server or a Sentinel. The two
// have different command tables, so a rule for one is an error on the
// other (ACL SETUSER on a Sentinel refuses +get).
type Side int

const (
	Redis Side = iota
	Sentinel
)

// Mode is the agent's mode, which changes what its own user needs.
type Mode string

const (
	ModeSentinel Mode = "sentinel"
	ModeCluster  Mode = "cluster"
)

// A command the agent (or a server on its behalf) sends, as ACL DRYRUN
// takes it: the command, then any arguments the rule depends on (a
// subcommand, a channel, a key).
type Command []string

func (c Command) String() string { return strings.Join(c, " ") }

// Rules are the ACL rules of one role on one side, with the commands the
// rules must allow (the check) beside them. Rules grant exactly what
// the commands need: nothing but those commands (-@all first), no key
// patterns unless a command moves keys, and only the channels named.
type Rules struct {
	Rules  string
	Needed []Command
}

// agentOnRedis is every command the agent sends a redis-server in
// sentinel mode (agent/sentinel goredis.go): the probes and INFO, the
// role changes, the preStop's pause and client kill, the CONFIG SETs of
// masterauth/requirepass (rotation) and tls-cert-file (certificate
// reload), and the ACL commands of the rotation and of this check.
var agentOnRedis = []Command{
	{"ping"}, {"info", "replication"}, {"replicaof", "no", "one"},
	{"client", "pause", "1", "write"}, {"client", "unpause"}, {"client", "kill", "type", "normal"},
	{"config", "get", "masterauth"}, {"config", "set", "masterauth", "x"},
	{"acl", "getuser", "default"}, {"acl", "setuser", "default"}, {"acl", "dryrun", "default", "ping"},
}

// agentOnCluster is what the agent sends a redis-server in cluster mode
// (agent/cluster redis.go): CLUSTER and its subcommands, DBSIZE and the
// slot's keys it reads before creating a cluster or moving a slot, and
// MIGRATE, which needs the key pattern (~*) to move keys at a rebalance
// and logs in to the target as the same user to RESTORE them there
// (after a SELECT 0 on a new connection).
var agentOnCluster = []Command{
	{"ping"}, {"info", "replication"}, {"dbsize"},
	{"cluster", "nodes"}, {"cluster", "info"}, {"cluster", "meet", "127.0.0.1", "6379"},
	{"cluster", "addslotsrange", "0", "1"}, {"cluster", "replicate", "x"}, {"cluster", "forget", "x"},
	{"cluster", "failover"}, {"cluster", "setslot", "0", "stable"}, {"cluster", "getkeysinslot", "0", "1"},
	{"migrate", "127.0.0.1", "6379", "", "0", "1000", "keys", "k"}, {"restore-asking", "k", "0", "x"}, {"restore", "k", "0", "x"}, {"asking"}, {"select", "0"},
	{"config", "get", "masterauth"}, {"config", "set", "masterauth", "x"},
	{"acl", "getuser", "default"}, {"acl", "setuser", "default"}, {"acl", "dryrun", "default", "ping"},
}

// agentOnSentinel is what the agent sends its Sentinels (agent/sentinel
// goredis.go): the SENTINEL subcommands it uses (not DEBUG, SIMULATE-FAILURE
// and the like), the subscription to +switch-master, SHUTDOWN (the only way
// to make a Sentinel load renewed TLS files), and the ACL commands of the
// rotation and of this check.
var agentOnSentinel = []Command{
	{"ping"}, {"sentinel", "get-master-addr-by-name", "m"}, {"sentinel", "remove", "m"}, {"sentinel", "monitor", "m", "h", "1", "1"},
	{"sentinel", "set", "m", "quorum", "2"}, {"sentinel", "failover", "m"}, {"sentinel", "reset", "m"},
	{"sentinel", "master", "m"}, {"sentinel", "sentinels", "m"}, {"sentinel", "replicas", "m"},
	{"sentinel", "config", "set", "sentinel-pass", "x"}, {"sentinel", "config", "get", "sentinel-pass"}, {"sentinel", "flushconfig"},
	{"subscribe", "+switch-master"}, {"shutdown"},
	{"acl", "getuser", "default"}, {"acl", "setuser", "default"}, {"acl", "dryrun", "default", "ping"},
}

// replicationNeeds is what a replica sends its master (Redis's own
// documented set for masteruser).
var replicationNeeds = []Command{{"psync", "?", "-1"}, {"replconf", "ack", "0"}, {"ping"}}

// sentinelOnRedis is what Sentinel sends a redis-server it monitors (its
// auth-user), as Redis documents it, hello channel only.
var sentinelOnRedis = []Command{
	{"ping"}, {"info"}, {"role"}, {"multi"}, {"exec"}, {"slaveof", "no", "one"}, {"replicaof", "no", "one"},
	{"config", "rewrite"}, {"client", "setname", "sentinel"}, {"client", "kill", "type", "normal"},
	{"script", "kill"}, {"subscribe", "__sentinel__:hello"}, {"publish", "__sentinel__:hello", "x"},
}

// sentinelOnSentinel is what a Sentinel sends the other Sentinels (its
// sentinel-user): PING, its name, hello messages, and the vote.
var sentinelOnSentinel = []Command{
	{"ping"}, {"client", "setname", "sentinel"}, {"publish", "__sentinel__:hello", "x"},
	{"sentinel", "is-master-down-by-addr", "127.0.0.1", "6379", "0", "*"},
}

// AgentRules are the agent's own user's rules on side in mode.
func AgentRules(mode Mode, side Side) Rules {
	switch {
	case side == Sentinel:
		return Rules{Rules: "-@all +ping +sentinel|get-master-addr-by-name +sentinel|remove +sentinel|monitor +sentinel|set +sentinel|failover +sentinel|reset +sentinel|master +sentinel|sentinels +sentinel|replicas +sentinel|config +sentinel|flushconfig +subscribe &+switch-master +shutdown +acl|getuser +acl|setuser +acl|dryrun", Needed: agentOnSentinel}
	case mode == ModeCluster:
		return Rules{Rules: "-@all ~* +ping +info +dbsize +cluster +migrate +restore +restore-asking +asking +select +config|get +config|set +acl|getuser +acl|setuser +acl|dryrun", Needed: agentOnCluster}
	}
	return Rules{Rules: "-@all +ping +info +replicaof +client|pause +client|unpause +client|kill +config|get +config|set +acl|getuser +acl|setuser +acl|dryrun", Needed: agentOnRedis}
}

// ReplicationRules are the replication user's rules (redis-servers only).
func ReplicationRules() Rules {
	return Rules{Rules: "-@all +psync +replconf +ping", Needed: replicationNeeds}
}

// SentinelRules are Sentinel's user's rules on side.
func SentinelRules(side Side) Rules {
	if side == Sentinel {
		return Rules{Rules: "-@all +ping +client|setname +publish +sentinel|is-master-down-by-addr &__sentinel__:hello", Needed: sentinelOnSentinel}
	}
	return Rules{Rules: "-@all +ping +info +role +multi +exec +slaveof +replicaof +config|rewrite +client|setname +client|kill +script|kill +subscribe +publish &__sentinel__:hello", Needed: sentinelOnRedis}
}

// Managed is one user the agent defines on a server, with its rules.
type Managed struct {
	Name string
	Role string // for errors and docs: "agent", "replication", "sentinel"
	Rules
}

// On are the named users the agent defines on side in mode (never the
// default user).
func (u Users) On(mode Mode, side Side) []Managed {
	var out []Managed
	if u.Agent != "" {
		out = append(out, Managed{Name: u.Agent, Role: "agent", Rules: AgentRules(mode, side)})
	}
	if u.Replication != "" && side == Redis {
		out = append(out, Managed{Name: u.Replication, Role: "replication", Rules: ReplicationRules()})
	}
	if u.Sentinel != "" && mode == ModeSentinel {
		out = append(out, Managed{Name: u.Sentinel, Role: "sentinel", Rules: SentinelRules(side)})
	}
	return merge(out)
}

// merge folds users that share a name (one user may hold several roles,
// e.g. replication and Sentinel) into one holding every role's rules.
func merge(us []Managed) []Managed {
	var out []Managed
	idx := map[string]int{}
	for _, m := range us {
		i, ok := idx[m.Name]
		if !ok {
			idx[m.Name] = len(out)
			out = append(out, m)
			continue
		}
		o := &out[i]
		o.Role += "+" + m.Role
		o.Rules.Rules += " " + strings.TrimPrefix(m.Rules.Rules, "-@all ")
		o.Needed = append(append([]Command(nil), o.Needed...), m.Needed...)
	}
	return out
}

// Enabled: the agent manages at least one user, or the default user is
// off.
func (u Users) Enabled() bool {
	return u.Agent != "" || u.Replication != "" || u.Sentinel != "" || u.DefaultOff
}

// Accepting are the users that hold the password on side: the default
// user unless it is off, and the managed ones. A rotation adds and drops
// the password on each.
func (u Users) Accepting(mode Mode, side Side) []string {
	var out []string
	if !u.DefaultOff || side == Sentinel {
		out = append(out, "default")
	}
	for _, m := range u.On(mode, side) {
		out = append(out, m.Name)
	}
	return out
}

// Line is the user line (redis.conf, sentinel.conf: "user <name> <rules>")
// that defines m accepting the passwords given.
func (m Managed) Line(passwords []string) string {
	return "user " + m.Name + " " + m.SetUser(passwords)
}

// SetUser is the rules of ACL SETUSER <name> that give m exactly its
// rules and the passwords given, from any previous state (reset first),
// in one command.
func (m Managed) SetUser(passwords []string) string {
	s := "reset on"
	for _, pw := range passwords {
		s += " >" + pw
	}
	return s + " " + m.Rules.Rules
}

// DefaultOffLine is the user line that disables the default user.
const DefaultOffLine = "user default off resetpass -@all"

// ValidName checks a user name from a flag: Redis user names may not hold
// spaces or control characters, and the config line must read back.
func ValidName(flag, name string) error {
	if name == "" {
		return nil
	}
	if name == "default" {
		return fmt.Errorf("%s is %q: name a user of its own; the default user keeps its own rules (leave the flag empty to log in as the default user)", flag, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f || c == '"' || c == '\'' || c == '>' || c == '<' || c == '#' {
			return fmt.Errorf("%s %q holds a space, a quote, one of > < # or a control character: use letters, digits, - and _", flag, name)
		}
	}
	return nil
}
