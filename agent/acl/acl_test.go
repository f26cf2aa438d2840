package acl

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOn(t *testing.T) {
	all := Users{Agent: "a", Replication: "r", Sentinel: "s"}
	cases := map[string]struct {
		reason string
		users  Users
		mode   Mode
		side   Side
		want   []string // name:role
	}{
		"None": {
			reason: "no flags: the default user does everything, as before",
			users:  Users{}, mode: ModeSentinel, side: Redis,
		},
		"RedisSide": {
			reason: "every role has a user on a redis-server",
			users:  all, mode: ModeSentinel, side: Redis,
			want: []string{"a:agent", "r:replication", "s:sentinel"},
		},
		"SentinelSide": {
			reason: "nothing replicates from a Sentinel: no replication user there",
			users:  all, mode: ModeSentinel, side: Sentinel,
			want: []string{"a:agent", "s:sentinel"},
		},
		"ClusterHasNoSentinel": {
			reason: "cluster mode runs no Sentinel",
			users:  all, mode: ModeCluster, side: Redis,
			want: []string{"a:agent", "r:replication"},
		},
		"SharedName": {
			reason: "one user for replication and Sentinel holds both roles' rules",
			users:  Users{Replication: "x", Sentinel: "x"}, mode: ModeSentinel, side: Redis,
			want: []string{"x:replication+sentinel"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, m := range tc.users.On(tc.mode, tc.side) {
				got = append(got, m.Name+":"+m.Role)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nOn(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestSharedNameKeepsBothRoles(t *testing.T) {
	m := Users{Replication: "x", Sentinel: "x"}.On(ModeSentinel, Redis)[0]
	for _, r := range []string{"+psync", "+replconf", "+slaveof", "+config|rewrite"} {
		if !strings.Contains(m.Rules.Rules, r) {
			t.Errorf("merged rules %q lack %s", m.Rules.Rules, r)
		}
	}
	if strings.Count(m.Rules.Rules, "-@all") != 1 || !strings.HasPrefix(m.Rules.Rules, "-@all ") {
		t.Errorf("merged rules %q: want one -@all, first (a later one would take back the first role's commands)", m.Rules.Rules)
	}
	if len(m.Needed) != len(replicationNeeds)+len(sentinelOnRedis) {
		t.Errorf("merged user checks %d commands, want both roles' %d", len(m.Needed), len(replicationNeeds)+len(sentinelOnRedis))
	}
}

func TestAccepting(t *testing.T) {
	u := Users{Agent: "a", Replication: "r", Sentinel: "s", DefaultOff: true}
	if diff := cmp.Diff([]string{"a", "r", "s"}, u.Accepting(ModeSentinel, Redis)); diff != "" {
		t.Errorf("default user off: redis-server users holding the password: -want +got:\n%s", diff)
	}
	// Sentinels keep their default user: Sentinel-aware clients log in
	// to it with the password.
	if diff := cmp.Diff([]string{"default", "a", "s"}, u.Accepting(ModeSentinel, Sentinel)); diff != "" {
		t.Errorf("Sentinel users holding the password: -want +got:\n%s", diff)
	}
	if diff := cmp.Diff([]string{"default"}, Users{}.Accepting(ModeSentinel, Redis)); diff != "" {
		t.Errorf("no ACL users: -want +got:\n%s", diff)
	}
}

// While the users are only defined, every role logs in as the default
// user, yet the users exist and hold the password (a rotation covers them).
func TestDefineOnly(t *testing.T) {
	u := Users{Agent: "a", Replication: "r", DefineOnly: true}
	if got := u.Login(u.Agent); got != "" {
		t.Errorf("Login(agent) = %q while defining only, want the default user", got)
	}
	if got := (Users{Agent: "a"}).Login("a"); got != "a" {
		t.Errorf("Login(agent) = %q, want a", got)
	}
	if diff := cmp.Diff([]string{"default", "a", "r"}, u.Accepting(ModeCluster, Redis)); diff != "" {
		t.Errorf("users holding the password while defining only: -want +got:\n%s", diff)
	}
}

func TestLine(t *testing.T) {
	m := Managed{Name: "r", Rules: ReplicationRules()}
	want := "user r reset on >p1 >p2 -@all +psync +replconf +ping"
	if got := m.Line([]string{"p1", "p2"}); got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
}

// Every rule set starts from nothing and grants no key pattern, except
// cluster mode's agent (MIGRATE moves keys), and never a data command.
func TestRulesAreLeast(t *testing.T) {
	sets := map[string]string{
		"agent/sentinel/redis":    AgentRules(ModeSentinel, Redis).Rules,
		"agent/sentinel/sentinel": AgentRules(ModeSentinel, Sentinel).Rules,
		"agent/cluster/redis":     AgentRules(ModeCluster, Redis).Rules,
		"replication":             ReplicationRules().Rules,
		"sentinel/redis":          SentinelRules(Redis).Rules,
		"sentinel/sentinel":       SentinelRules(Sentinel).Rules,
	}
	for name, r := range sets {
		if !strings.HasPrefix(r, "-@all ") {
			t.Errorf("%s: %q does not start with -@all", name, r)
		}
		for _, bad := range []string{"+@all", "allkeys", "allcommands", "allchannels", "&*", "+@read", "+@write", "+@dangerous", "+flushall", "+get", "+acl|deluser", "+acl|load"} {
			if strings.Contains(r, bad+" ") || strings.HasSuffix(r, bad) {
				t.Errorf("%s: %q grants %s", name, r, bad)
			}
		}
		if strings.Contains(r, "~") != (name == "agent/cluster/redis") {
			t.Errorf("%s: %q: a key pattern only for cluster mode's agent (MIGRATE)", name, r)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"", "ha-agent", "agent_1"} {
		if err := ValidName("--agent-user", ok); err != nil {
			t.Errorf("ValidName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"default", "a b", "a>b", `a"b`, "a\nb"} {
		err := ValidName("--agent-user", bad)
		if err == nil || !strings.Contains(err.Error(), "--agent-user") {
			t.Errorf("ValidName(%q) = %v, want an error naming the flag", bad, err)
		}
	}
}

func TestCheck(t *testing.T) {
	agent := Managed{Name: "ha-agent", Role: "agent", Rules: AgentRules(ModeSentinel, Redis)}
	cases := map[string]struct {
		reason string
		dry    DryRun
		want   string // "" for no error; else a part of the error
		perm   bool
	}{
		"AllAllowed": {
			reason: "every command answers OK",
			dry:    func(context.Context, string, []string) (string, error) { return "", nil },
		},
		"OneDenied": {
			reason: "the first denied command is named, with the user and the fix",
			dry: func(_ context.Context, _ string, cmd []string) (string, error) {
				if cmd[0] == "client" && cmd[1] == "kill" {
					return "This user has no permissions to run the 'client|kill' command", nil
				}
				return "", nil
			},
			want: `on redis-server 10.0.0.1:6379 the ACL user "ha-agent" (the agent user) may not run "client kill type normal", which it needs: This user has no permissions to run the 'client|kill' command; give it its rules again: ACL SETUSER ha-agent ` + agent.Rules.Rules,
			perm: true,
		},
		"NoSuchUser": {
			reason: "the user does not exist (an aclfile replaced the users)",
			dry: func(context.Context, string, []string) (string, error) {
				return "", errors.New("ERR User 'ha-agent' not found")
			},
			want: `redis-server 10.0.0.1:6379 has no ACL user "ha-agent" (the agent user)`,
			perm: true,
		},
		"CannotDryRun": {
			reason: "the agent's own login may not run ACL DRYRUN",
			dry: func(context.Context, string, []string) (string, error) {
				return "", errors.New("NOPERM this user has no permissions to run the 'acl|dryrun' command")
			},
			want: `may not run "acl dryrun"`,
			perm: true,
		},
		"NoAnswer": {
			reason: "a server that does not answer is retried, not a permission error",
			dry: func(context.Context, string, []string) (string, error) {
				return "", errors.New("dial tcp: connection refused")
			},
			want: "connection refused",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := Check(context.Background(), "redis-server 10.0.0.1:6379", []Managed{agent}, tc.dry)
			if tc.want == "" {
				if err != nil {
					t.Errorf("%s: %v", tc.reason, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s\nCheck() = %v\nwant it to contain %q", tc.reason, err, tc.want)
			}
			var pe *PermissionError
			if errors.As(err, &pe) != tc.perm {
				t.Errorf("%s: permission error %t, want %t", tc.reason, errors.As(err, &pe), tc.perm)
			}
		})
	}
}
