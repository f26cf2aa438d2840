package sentinel

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

// The include follows the rotation's steps, so a redis-server restarted at
// any of them accepts what its peers log in with.
func TestRewriteIncludeAuth(t *testing.T) {
	const initial = "replicaof 10.0.0.1 6379\nmasterauth p1\nrequirepass p1\n"
	cases := map[string]struct {
		reason     string
		masterauth string
		accept     []string
		want       string
	}{
		"Accept": {
			reason:     "step 1: both accepted as a user line, masterauth still the old",
			masterauth: "p1", accept: []string{"p1", "p2"},
			want: "replicaof 10.0.0.1 6379\nmasterauth p1\nuser default on ~* &* +@all >p1 >p2\n",
		},
		"RolledBackAccept": {
			reason:     "the same password twice is one password: requirepass",
			masterauth: "p1", accept: []string{"p1", "p1"},
			want: "replicaof 10.0.0.1 6379\nmasterauth p1\nrequirepass p1\n",
		},
		"Switch": {
			reason:     "step 2: masterauth only; the accepted lines stay as they are",
			masterauth: "p2",
			want:       "replicaof 10.0.0.1 6379\nmasterauth p2\nrequirepass p1\n",
		},
		"Drop": {
			reason:     "step 3 (and a plain change): one password, as init writes it",
			masterauth: "p2", accept: []string{"p2"},
			want: "replicaof 10.0.0.1 6379\nmasterauth p2\nrequirepass p2\n",
		},
		"AuthOff": {
			reason: "no password: no auth lines",
			accept: []string{""},
			want:   "replicaof 10.0.0.1 6379\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "redis-ha.conf")
			if err := os.WriteFile(path, []byte(initial), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := rewriteIncludeAuth(path, acl.Users{}, tc.masterauth, tc.accept); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("%s\ninclude: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRewriteIncludeAuthKeepsUserLineAtSwitch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "redis-ha.conf")
	if err := os.WriteFile(path, []byte("masterauth p1\nuser default on ~* &* +@all >p1 >p2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rewriteIncludeAuth(path, acl.Users{}, "p2", nil); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := "masterauth p2\nuser default on ~* &* +@all >p1 >p2\n"; string(got) != want {
		t.Errorf("include after the switch:\n%s\nwant:\n%s", got, want)
	}
}

func TestRewriteIncludeAuthRefusesUnsafePassword(t *testing.T) {
	path := filepath.Join(t.TempDir(), "redis-ha.conf")
	if err := os.WriteFile(path, []byte("masterauth p1\nrequirepass p1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := rewriteIncludeAuth(path, acl.Users{}, "p1", []string{"p1", "has space"})
	if err == nil {
		t.Fatal("a password with a space was written into the include")
	}
	got, _ := os.ReadFile(path)
	if string(got) != "masterauth p1\nrequirepass p1\n" {
		t.Errorf("include changed after a refused password:\n%s", got)
	}
}

// With ACL users every user the agent manages follows the same steps as
// the default user, and a disabled default user stays off at each.
func TestRewriteIncludeAuthUsers(t *testing.T) {
	users := acl.Users{Agent: "ha-agent", Replication: "ha-repl", Sentinel: "ha-sentinel", DefaultOff: true}
	agent := "user ha-agent reset on >%s " + acl.AgentRules(acl.ModeSentinel, acl.Redis).Rules
	repl := "user ha-repl reset on >%s " + acl.ReplicationRules().Rules
	sent := "user ha-sentinel reset on >%s " + acl.SentinelRules(acl.Redis).Rules
	each := func(pws string) string {
		return fmt.Sprintf(agent, pws) + "\n" + fmt.Sprintf(repl, pws) + "\n" + fmt.Sprintf(sent, pws) + "\n"
	}
	const role = "replicaof 10.0.0.1 6379\n"
	initial := role + "masteruser ha-repl\nmasterauth p1\n" + acl.DefaultOffLine + "\n" + each("p1")
	steps := []struct {
		name       string
		masterauth string
		accept     []string
		want       string
	}{
		{"Accept", "p1", []string{"p1", "p2"}, role + "masteruser ha-repl\nmasterauth p1\n" + acl.DefaultOffLine + "\n" + each("p1 >p2")},
		{"Switch", "p2", nil, role + "masteruser ha-repl\nmasterauth p2\n" + acl.DefaultOffLine + "\n" + each("p1 >p2")},
		{"Drop", "p2", []string{"p2"}, role + "masteruser ha-repl\nmasterauth p2\n" + acl.DefaultOffLine + "\n" + each("p2")},
	}
	path := filepath.Join(t.TempDir(), "redis-ha.conf")
	if err := os.WriteFile(path, []byte(initial), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if err := rewriteIncludeAuth(path, users, s.masterauth, s.accept); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if diff := cmp.Diff(s.want, string(got)); diff != "" {
			t.Errorf("include after %s: -want +got:\n%s", s.name, diff)
		}
	}
}

// init's include: requirepass as before without users; with users, the
// replication user for masteruser, the default user off and each user's
// line, and no requirepass.
func TestRedisIncludeUsers(t *testing.T) {
	cfg := config.Config{
		Identity: config.Identity{PodName: "redis-0", Namespace: "ns"}, Mode: config.ModeSentinel,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		DownAfter: 5 * time.Second, RedisPort: 6379, SentinelPort: 26379, PasswordFile: "/s/pw", MinReplicasToWrite: -1,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	authOf := func(inc []byte) []string {
		var out []string
		for _, l := range strings.Split(string(inc), "\n") {
			for _, p := range []string{"masteruser ", "masterauth ", "requirepass ", "user "} {
				if strings.HasPrefix(l, p) {
					out = append(out, l)
				}
			}
		}
		return out
	}
	inc, err := redisInclude(cfg, 3, includeAddrs{Self: "a", AnnounceHost: "a", AnnouncePort: 6379, MasterHost: "b", MasterPort: 6379}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"masterauth pw", "requirepass pw"}, authOf(inc)); diff != "" {
		t.Errorf("include without users: -want +got:\n%s", diff)
	}
	cfg.AgentUser, cfg.ReplicationUser, cfg.SentinelAuthUser, cfg.DisableDefaultUser = "ha-agent", "ha-repl", "ha-sentinel", true
	inc, err = redisInclude(cfg, 3, includeAddrs{Self: "a", AnnounceHost: "a", AnnouncePort: 6379, MasterHost: "b", MasterPort: 6379}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"masteruser ha-repl", "masterauth pw", acl.DefaultOffLine,
		"user ha-agent reset on >pw " + acl.AgentRules(acl.ModeSentinel, acl.Redis).Rules,
		"user ha-repl reset on >pw " + acl.ReplicationRules().Rules,
		"user ha-sentinel reset on >pw " + acl.SentinelRules(acl.Redis).Rules,
	}
	if diff := cmp.Diff(want, authOf(inc)); diff != "" {
		t.Errorf("include with users: -want +got:\n%s", diff)
	}
	// The first step of turning users on: defined, but replicas still log
	// in as the default user, which keeps requirepass.
	cfg.DisableDefaultUser, cfg.DefineUsersOnly = false, true
	inc, err = redisInclude(cfg, 3, includeAddrs{Self: "a", AnnounceHost: "a", AnnouncePort: 6379, MasterHost: "b", MasterPort: 6379}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	want = append([]string{"masterauth pw", "requirepass pw"}, want[3:]...)
	if diff := cmp.Diff(want, authOf(inc)); diff != "" {
		t.Errorf("include with users only defined: -want +got:\n%s", diff)
	}
}

// The rotation's rewrite leaves the --acl-file users' block alone.
func TestRewriteIncludeAuthKeepsFileUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "redis-ha.conf")
	initial := acl.ReplaceFileBlock("masterauth p1\nrequirepass p1\n", []acl.FileUser{{Name: "app", Rules: []string{"on", ">a", "+@all"}}})
	if err := os.WriteFile(path, []byte(initial), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rewriteIncludeAuth(path, acl.Users{}, "p1", []string{"p1", "p2"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if diff := cmp.Diff([]string{"app"}, acl.FileBlockNames(string(got))); diff != "" || !strings.Contains(string(got), "user app on >a +@all\n") || !strings.Contains(string(got), "user default on ~* &* +@all >p1 >p2\n") {
		t.Errorf("include after accept:\n%s", got)
	}
}
