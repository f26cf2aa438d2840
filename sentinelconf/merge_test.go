package sentinelconf

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// view is what a merged file says, for comparing with cmp.Diff.
type view struct {
	MyID         string
	CurrentEpoch uint64
	Masters      []string
	Master       Master
}

func viewOf(t *testing.T, data []byte, name string) view {
	t.Helper()
	f, err := Parse(data)
	if err != nil {
		t.Fatalf("merged file does not parse: %v\n%s", err, data)
	}
	m, _ := f.Master(name)
	return view{MyID: f.MyID(), CurrentEpoch: f.CurrentEpoch(), Masters: f.Masters(), Master: m}
}

var sortKnown = cmp.Options{
	cmpopts.SortSlices(func(a, b KnownSentinel) bool { return a.Host < b.Host }),
	cmpopts.SortSlices(func(a, b Addr) bool { return a.Host < b.Host }),
	cmpopts.EquateEmpty(),
}

func TestMerge(t *testing.T) {
	s1 := KnownSentinel{Addr{"127.0.20.12", 26390}, id2}
	s3 := KnownSentinel{Addr{"127.0.20.13", 26390}, id3}
	master := Addr{"127.0.20.11", 6390}
	replica := Addr{"127.0.20.12", 6390}
	cases := map[string]struct {
		reason      string
		existing    string // a testdata file name, or the file itself when it has a newline
		params      func(p *Params)
		want        view
		wantChanges Changes
	}{
		"epochs kept": {
			reason:   "the leader's file after two failovers: every epoch and known peer survives",
			existing: "redis-7.0.15/noauth-failover-1.conf",
			want: view{MyID: id1, CurrentEpoch: 2, Masters: []string{"mymaster"}, Master: Master{
				Name: "mymaster", Addr: master, Quorum: 2, ConfigEpoch: 2, LeaderEpoch: 2,
				KnownReplicas: []Addr{replica}, KnownSentinels: []KnownSentinel{s1, s3},
			}},
		},
		"monitor replaced on master change": {
			reason:   "the replica is the new master: it leaves the replicas, the old master joins them, epochs stay",
			existing: "redis-7.0.15/noauth-failover-1.conf",
			params:   func(p *Params) { p.MasterHost = "127.0.20.12" },
			want: view{MyID: id1, CurrentEpoch: 2, Masters: []string{"mymaster"}, Master: Master{
				Name: "mymaster", Addr: replica, Quorum: 2, ConfigEpoch: 2, LeaderEpoch: 2,
				KnownReplicas: []Addr{master}, KnownSentinels: []KnownSentinel{s1, s3},
			}},
			wantChanges: Changes{PreviousMaster: &master, DroppedReplicas: []Addr{replica}, AddedReplicas: []Addr{master}},
		},
		"old master gone is not added": {
			reason:   "the old master's pod no longer exists, so it is not remembered as a replica",
			existing: "redis-7.0.15/noauth-failover-2.conf",
			params: func(p *Params) {
				*p = realParams(2) // pod 2, whose replica became master
				p.MasterHost = "127.0.20.12"
				p.Peers = []Peer{{"127.0.20.13", id3}}
			},
			want: view{MyID: id2, CurrentEpoch: 2, Masters: []string{"mymaster"}, Master: Master{
				Name: "mymaster", Addr: replica, Quorum: 2, ConfigEpoch: 2, LeaderEpoch: 0,
				KnownSentinels: []KnownSentinel{s3},
			}},
			wantChanges: Changes{
				PreviousMaster: &master, DroppedReplicas: []Addr{replica},
				DroppedSentinels: []KnownSentinel{{Addr{"127.0.20.11", 26390}, id1}},
			},
		},
		"removed peer dropped": {
			reason:   "pod 3 was scaled away: its Sentinel must not count any more",
			existing: "redis-7.0.15/noauth-failover-1.conf",
			params:   func(p *Params) { p.Peers = p.Peers[:1] },
			want: view{MyID: id1, CurrentEpoch: 2, Masters: []string{"mymaster"}, Master: Master{
				Name: "mymaster", Addr: master, Quorum: 2, ConfigEpoch: 2, LeaderEpoch: 2,
				KnownReplicas: []Addr{replica}, KnownSentinels: []KnownSentinel{s1},
			}},
			wantChanges: Changes{DroppedSentinels: []KnownSentinel{s3}},
		},
		"stale myid dropped": {
			reason:   "127.0.20.12 is now another pod (or ran a Sentinel with another id): the old id is a ghost",
			existing: "redis-7.0.15/noauth-failover-1.conf",
			params:   func(p *Params) { p.Peers[0].MyID = MyID("redis", "redis-9") },
			want: view{MyID: id1, CurrentEpoch: 2, Masters: []string{"mymaster"}, Master: Master{
				Name: "mymaster", Addr: master, Quorum: 2, ConfigEpoch: 2, LeaderEpoch: 2,
				KnownReplicas: []Addr{replica}, KnownSentinels: []KnownSentinel{s3},
			}},
			wantChanges: Changes{DroppedSentinels: []KnownSentinel{s1}},
		},
		"settings replaced, directives case-insensitive": {
			reason: "a hand-edited file in capitals: every owned line is replaced, others kept",
			existing: "PORT 1234\nSENTINEL MyID " + strings.Repeat("a", 40) + "\n" +
				"Sentinel Monitor mymaster 10.0.0.9 6379 1\nSENTINEL down-after-milliseconds mymaster 30000\n" +
				"SENTINEL CONFIG-EPOCH mymaster 7\nSentinel Current-Epoch 9\nsentinel KNOWN-REPLICA mymaster 127.0.20.12 6390\n",
			want: view{MyID: id1, CurrentEpoch: 9, Masters: []string{"mymaster"}, Master: Master{
				Name: "mymaster", Addr: master, Quorum: 2, ConfigEpoch: 7,
				KnownReplicas: []Addr{replica},
			}},
			// 10.0.0.9's pod does not exist, so it is not kept as a replica.
			wantChanges: Changes{PreviousMaster: &Addr{"10.0.0.9", 6379}},
		},
		"no master known": {
			reason:      "a pod booting fenced: no monitor, and nothing about the master Sentinel would refuse without one",
			existing:    "redis-7.0.15/auth-failover-1.conf",
			params:      func(p *Params) { p.MasterHost, p.MasterPort = "", 0 },
			want:        view{MyID: id1, CurrentEpoch: 2, Master: Master{Name: "mymaster"}},
			wantChanges: Changes{PreviousMaster: &master},
		},
		"other master dropped, duplicates dropped": {
			reason: "one file, one master; a line repeated twice is kept once",
			existing: "sentinel monitor old 10.0.0.9 6379 2\nsentinel config-epoch old 3\n" +
				"sentinel monitor mymaster 127.0.20.11 6390 2\n" +
				"sentinel known-sentinel mymaster 127.0.20.13 26390 " + id3 + "\n" +
				"sentinel known-sentinel mymaster 127.0.20.13 26390 " + id3 + "\n" +
				"sentinel known-replica mymaster 127.0.20.12 6390\nsentinel known-slave mymaster 127.0.20.12 06390\n" +
				"sentinel known-replica mymaster 127.0.20.11 6390\n" +
				"sentinel known-sentinel mymaster 127.0.20.11 26390 " + id1 + "\n" +
				"sentinel known-sentinel mymaster 127.0.20.12 26390\n",
			want: view{MyID: id1, Masters: []string{"mymaster"}, Master: Master{
				Name: "mymaster", Addr: master, Quorum: 2,
				KnownReplicas: []Addr{replica}, KnownSentinels: []KnownSentinel{s3},
			}},
			wantChanges: Changes{
				DroppedMasters:   []string{"old"},
				DroppedReplicas:  []Addr{replica, master},
				DroppedSentinels: []KnownSentinel{s3, {Addr{"127.0.20.11", 26390}, id1}, {Addr: Addr{"127.0.20.12", 26390}}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := realParams(1)
			if tc.params != nil {
				tc.params(&p)
			}
			existing := []byte(tc.existing)
			if !strings.Contains(tc.existing, "\n") {
				existing = readTestdata(t, tc.existing)
			}
			out, ch, err := Merge(existing, p)
			if err != nil {
				t.Fatalf("%s: %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, viewOf(t, out, p.MasterName), sortKnown); diff != "" {
				t.Errorf("%s: merged file (-want +got):\n%s\n%s", tc.reason, diff, out)
			}
			if diff := cmp.Diff(tc.wantChanges, ch, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: Changes (-want +got):\n%s", tc.reason, diff)
			}
			again, ch2, err := Merge(out, p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(out), string(again)); diff != "" {
				t.Errorf("%s: not idempotent (-once +twice):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(Changes{}, ch2, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: a second merge still changes things (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestMergeAuth(t *testing.T) {
	cases := map[string]struct {
		reason   string
		password string
		want     []string // the file's auth lines, in order
	}{
		"rotated": {
			reason:   "new password everywhere; Sentinel's unquoted old one and its user default hash are gone",
			password: "n3w-s3cret",
			want:     []string{"sentinel auth-pass mymaster n3w-s3cret", "requirepass n3w-s3cret", "sentinel sentinel-pass n3w-s3cret"},
		},
		"auth turned off": {reason: "no password: no auth line is left behind"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := realParams(1)
			p.Password = tc.password
			out, _, err := Merge(readTestdata(t, "redis-7.0.15/auth-failover-1.conf"), p)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, "pass") || strings.HasPrefix(l, "user ") || strings.Contains(l, "s3cret") {
					got = append(got, l)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: auth lines (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// The ACL users of Params replace their lines of the existing file (as
// Sentinel rewrote them, with password hashes), keep other users' lines,
// and name the users for auth-user and sentinel-user.
func TestMergeUsers(t *testing.T) {
	existing := []byte(string(readTestdata(t, "redis-7.0.15/auth-failover-1.conf")) +
		"user ha-agent on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 resetchannels -@all +ping\n" +
		"user someone-else on nopass ~* +@all\n")
	p := realParams(1)
	p.Password, p.AuthUser, p.SentinelUser = "pw", "ha-sentinel", "ha-sentinel"
	p.Users = []string{"user ha-agent reset on >pw -@all +ping +sentinel|master", "user ha-sentinel reset on >pw -@all +ping"}
	out, _, err := Merge(existing, p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "-user") || strings.HasPrefix(l, "user ") {
			got = append(got, l)
		}
	}
	want := []string{
		"sentinel auth-user mymaster ha-sentinel",
		"sentinel sentinel-user ha-sentinel",
		"user ha-agent reset on >pw -@all +ping +sentinel|master",
		"user ha-sentinel reset on >pw -@all +ping",
		"user someone-else on nopass ~* +@all",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("user lines (-want +got):\n%s", diff)
	}
	again, _, err := Merge(out, p)
	if err != nil || string(again) != string(out) {
		t.Errorf("a second merge changed the file (%v):\n%s", err, cmp.Diff(string(out), string(again)))
	}
}

func TestMergeInvalidFile(t *testing.T) {
	out, _, err := Merge(readTestdata(t, "invalid-monitor-missing-fields.conf"), realParams(1))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 4 {
		t.Fatalf("Merge error = %v, want a *ParseError for line 4", err)
	}
	if out != nil {
		t.Errorf("Merge returned output with an error: %q", out)
	}
}

func TestMergeIdempotentOnEveryRealFile(t *testing.T) {
	files, err := filepath.Glob("testdata/*/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no real files: %v", err)
	}
	variants := map[string]func(p *Params){
		"same":          func(p *Params) {},
		"master moved":  func(p *Params) { p.MasterHost = "127.0.20.12" },
		"no peers":      func(p *Params) { p.Peers = nil },
		"password":      func(p *Params) { p.Password = "pw" },
		"renamed":       func(p *Params) { p.MasterName = "other" },
		"other pod ids": func(p *Params) { p.MyID = MyID("x", "y"); p.Peers[0].MyID = MyID("x", "z") },
	}
	for _, path := range files {
		for vname, v := range variants {
			name, _ := filepath.Rel("testdata", path)
			t.Run(name+"/"+vname, func(t *testing.T) {
				p := realParams(1)
				v(&p)
				once, _, err := Merge(readTestdata(t, name), p)
				if err != nil {
					t.Fatal(err)
				}
				twice, _, err := Merge(once, p)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(string(once), string(twice)); diff != "" {
					t.Errorf("merge(merge(x)) != merge(x) (-once +twice):\n%s", diff)
				}
			})
		}
	}
}

func TestParamsValidate(t *testing.T) {
	cases := map[string]struct {
		change func(p *Params)
		want   string
	}{
		"ok":                  {change: func(p *Params) {}, want: ""},
		"quorum":              {change: func(p *Params) { p.Quorum = 0 }, want: `Quorum "0": must be 1 or more: a majority of the Sentinels, e.g. 2 of 3`},
		"master name space":   {change: func(p *Params) { p.MasterName = "my master" }, want: `MasterName "my master": must be a non-empty word without spaces, quotes or control characters (Sentinel writes it unquoted when it rewrites its file)`},
		"master host":         {change: func(p *Params) { p.MasterHost = "redis 0" }, want: `MasterHost "redis 0": must be a DNS name or an IP address, or empty when no master is known`},
		"no master known":     {change: func(p *Params) { p.MasterHost, p.MasterPort = "", 0 }, want: ""},
		"port":                {change: func(p *Params) { p.Port = 70000 }, want: `Port "70000": must be a TCP port, 1-65535`},
		"down-after":          {change: func(p *Params) { p.DownAfter = 0 }, want: `DownAfter "0s": must be 1ms or more`},
		"failover-timeout":    {change: func(p *Params) { p.FailoverTimeout = time.Microsecond }, want: `FailoverTimeout "1µs": must be 1ms or more`},
		"parallel-syncs":      {change: func(p *Params) { p.ParallelSyncs = 0 }, want: `ParallelSyncs "0": must be 1 or more`},
		"myid":                {change: func(p *Params) { p.MyID = "redis-0" }, want: `MyID "redis-0": must be 40 hex characters; use MyID(namespace, pod name)`},
		"peer host":           {change: func(p *Params) { p.Peers[1].Host = "a b" }, want: `Peers[1].Host "a b": must be a DNS name or an IP address`},
		"password with space": {change: func(p *Params) { p.Password = "hunter2 secret" }, want: `Password: contains a space, a quote or a control character; redis-sentinel 7.0 writes it unquoted when it rewrites sentinel.conf and then cannot load the file: use a password of printable characters without spaces or quotes, e.g. hex or base64`},
		// Measured: Sentinel 7.0.15 rewrites it as auth-pass m ab"cd and
		// then stops at "Unbalanced quotes"; Valkey 8.1.1 writes
		// requirepass "ab"cd".
		"tls ok":                     {change: func(p *Params) { p.TLS = testTLS() }, want: ""},
		"tls auth-clients":           {change: func(p *Params) { p.TLS = testTLS(); p.TLS.AuthClients = "maybe" }, want: `TLS.AuthClients "maybe": must be yes, optional or no`},
		"tls plaintext port":         {change: func(p *Params) { p.TLS = testTLS(); p.TLS.PlaintextPort = p.Port }, want: `TLS.PlaintextPort "26390": must be 0 (TLS only) or a TCP port other than Port`},
		"tls path with space":        {change: func(p *Params) { p.TLS = testTLS(); p.TLS.KeyFile = "/etc/my tls/tls.key" }, want: `TLS.KeyFile "/etc/my tls/tls.key": must be a file path without spaces, quotes or control characters`},
		"password with quote inside": {change: func(p *Params) { p.Password = `ab"cd` }, want: `Password: contains a space, a quote or a control character; redis-sentinel 7.0 writes it unquoted when it rewrites sentinel.conf and then cannot load the file: use a password of printable characters without spaces or quotes, e.g. hex or base64`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := realParams(1)
			tc.change(&p)
			err := p.Validate()
			got := ""
			if err != nil {
				got = err.Error()
				var pe *ParamError
				if !errors.As(err, &pe) {
					t.Errorf("error %v is not a *ParamError", err)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func testTLS() *TLS {
	return &TLS{CertFile: "/etc/redis-ha/tls/tls.crt", KeyFile: "/etc/redis-ha/tls/tls.key", CAFile: "/etc/redis-ha/tls/ca.crt", AuthClients: "yes"}
}

// TestMergeTLS: with TLS the file serves TLS on Port with plaintext closed
// (or on a migration's port) and tls-replication yes; switching TLS off
// drops every tls line, including those Sentinel rewrote with quotes; a
// second merge changes nothing.
func TestMergeTLS(t *testing.T) {
	p := realParams(1)
	p.TLS = testTLS()
	out, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nport 0\n", "\ntls-port 26390\n", "\ntls-cert-file /etc/redis-ha/tls/tls.crt\n", "\ntls-key-file /etc/redis-ha/tls/tls.key\n",
		"\ntls-ca-cert-file /etc/redis-ha/tls/ca.crt\n", "\ntls-auth-clients yes\n", "\ntls-replication yes\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rendered file lacks %q:\n%s", want, out)
		}
	}
	again, _, err := Merge(out, p)
	if err != nil || string(again) != string(out) {
		t.Errorf("second merge changed the file (%v):\n%s", err, again)
	}
	p.TLS.PlaintextPort = 26391
	if mig, _ := Render(p); !strings.Contains(string(mig), "\nport 26391\n") {
		t.Errorf("migration: want port 26391 beside tls-port:\n%s", mig)
	}
	// As Sentinel rewrites it: paths quoted.
	rewritten := strings.ReplaceAll(string(out), "tls-cert-file /etc/redis-ha/tls/tls.crt", `tls-cert-file "/etc/redis-ha/tls/tls.crt"`)
	p.TLS = nil
	plain, _, err := Merge([]byte(rewritten), p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plain), "tls-") || !strings.Contains(string(plain), "\nport 26390\n") {
		t.Errorf("TLS switched off: want no tls lines and port 26390:\n%s", plain)
	}
}
