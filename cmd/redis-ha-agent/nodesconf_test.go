package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/redis-ha-agent/redis-ha-agent/agent/cluster"
)

func TestNodesconfRewriteFlags(t *testing.T) {
	cases := map[string]struct {
		args    []string
		env     map[string]string
		want    NodesconfRewriteCmd
		wantErr string
	}{
		"drop-in for update-node.sh": {
			args: []string{"nodesconf", "rewrite", "--", "redis-server", "/conf/redis.conf", "--port", "6379"},
			env:  map[string]string{"POD_IP": "10.0.0.7"},
			want: NodesconfRewriteCmd{NodesConf: "/data/nodes.conf", PodIP: "10.0.0.7", DNSTimeout: 5 * time.Second,
				Exec: []string{"redis-server", "/conf/redis.conf", "--port", "6379"}},
		},
		"initContainer, settings from env": {
			args: []string{"nodesconf", "rewrite"},
			env: map[string]string{"POD_IP": "fd00::7", "REDIS_HA_NODES_CONF": "/redis/nodes.conf",
				"REDIS_HA_DNS_TIMEOUT": "2s", "REDIS_HA_MOVE_CORRUPT_ASIDE": "true"},
			want: NodesconfRewriteCmd{NodesConf: "/redis/nodes.conf", PodIP: "fd00::7", DNSTimeout: 2 * time.Second, MoveCorruptAside: true},
		},
		"pod IP is required": {
			args:    []string{"nodesconf", "rewrite"},
			wantErr: "missing flags: --pod-ip=STRING",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for _, k := range []string{"POD_IP", "REDIS_HA_NODES_CONF", "REDIS_HA_DNS_TIMEOUT", "REDIS_HA_MOVE_CORRUPT_ASIDE"} {
				t.Setenv(k, tc.env[k])
				if _, ok := tc.env[k]; !ok {
					os.Unsetenv(k)
				}
			}
			var cli CLI
			p, err := kong.New(&cli, kong.Writers(io.Discard, io.Discard), kong.Exit(func(int) {}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Parse(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, cli.Nodesconf.Rewrite); diff != "" {
				t.Errorf("flags (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeDNS answers like net.Resolver.LookupHost from a table.
func fakeDNS(m map[string][]string) cluster.LookupHost {
	return func(_ context.Context, host string) ([]string, error) {
		if a, ok := m[host]; ok {
			return a, nil
		}
		return nil, errors.New("lookup " + host + ": no such host")
	}
}

const replicaConf = "../../nodesconf/testdata/redis-7.0.15-replica.conf"

func TestNodesconfRewriteFile(t *testing.T) {
	real, err := os.ReadFile(replicaConf)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte("bbd6c68dddad332e7d6a17b67de558872b4acc05 127.0.10.1:7010@17010,node-1.test myself,master - 0 0 2 connected 0-16383\nvars currentEpoch 5 last")
	moved := map[string][]string{
		"node-1.test": {"10.1.0.1"}, "node-2.test": {"fd00::2", "10.1.0.2"}, "node-3.test": {"10.1.0.3"}, "node-5.test": {"10.1.0.5"},
	}
	cases := map[string]struct {
		reason    string
		file      []byte // nil: no file
		aside     bool
		taken     bool // nodes.conf.corrupt-<now> exists already
		podIP     string
		dns       map[string][]string
		want      []byte            // nodes.conf afterwards; nil: must not exist
		wantAside map[string][]byte // other files afterwards
		wantErr   string
		wantLogs  []string // messages, in order
	}{
		"missing file": {
			reason: "a new node: nothing to do, nothing created",
			podIP:  "10.1.0.4", wantLogs: []string{"no nodes.conf: a new node, nothing to rewrite"},
		},
		"empty file": {
			reason: "Redis creates the file empty before its first save",
			file:   []byte{}, podIP: "10.1.0.4", want: []byte{},
			wantLogs: []string{"nodes.conf is empty (Redis had not saved it yet): nothing to rewrite"},
		},
		"all moved, one peer unresolved": {
			reason: "every pod has a new IP; node-3 is not in DNS yet; node-2 answers IPv6 first but its old address is IPv4",
			file:   real, podIP: "10.1.0.4", dns: map[string][]string{"node-1.test": moved["node-1.test"], "node-2.test": moved["node-2.test"], "node-5.test": moved["node-5.test"]},
			want: []byte(strings.NewReplacer("127.0.10.1:", "10.1.0.1:", "127.0.10.2:", "10.1.0.2:", "127.0.10.4:", "10.1.0.4:", "127.0.10.5:", "10.1.0.5:").Replace(string(real))),
			wantLogs: []string{"address rewritten", "address rewritten", "address rewritten", "address rewritten",
				"peer hostname did not resolve: it keeps its old address until gossip or a CLUSTER MEET corrects it",
				"peers without a hostname keep their address: set cluster-announce-hostname on every node so nodes.conf names its pod",
				"nodes.conf rewritten"},
		},
		"nothing moved": {
			reason: "unchanged content is not rewritten",
			file:   real, podIP: "127.0.10.4",
			dns:  map[string][]string{"node-1.test": {"127.0.10.1"}, "node-2.test": {"127.0.10.2"}, "node-3.test": {"127.0.10.3"}, "node-5.test": {"127.0.10.5"}},
			want: real,
			wantLogs: []string{"peers without a hostname keep their address: set cluster-announce-hostname on every node so nodes.conf names its pod",
				"every address is current: nodes.conf left as it was"},
		},
		"conflict": {
			reason: "myself takes node-3's old IP while node-3 does not resolve: keep the file, warn, go on (failing would keep this pod out until node-3 starts, which with OrderedReady waits for this one)",
			file:   real, podIP: "127.0.10.3", dns: map[string][]string{"node-1.test": {"127.0.10.1"}},
			want:     real,
			wantLogs: []string{"nodes.conf left unchanged: two nodes would share an address"},
		},
		"corrupt": {
			reason: "truncated file: fail, name the line and the fix, leave it alone",
			file:   garbage, podIP: "10.1.0.4", want: garbage,
			wantErr: `--nodes-conf (REDIS_HA_NODES_CONF) FILE is not a valid nodes.conf: line 2: got "vars currentEpoch 5 last", want a line ending in a newline; the file ends mid-line (truncated). The file was left unchanged: inspect it or restore it from a backup, or pass --move-corrupt-aside (REDIS_HA_MOVE_CORRUPT_ASIDE=true) to rename it to nodes.conf.corrupt-<unix time> so redis-server starts as a new node that has to rejoin the cluster`,
		},
		"corrupt, moved aside": {
			reason: "with the flag the file is renamed, never deleted",
			file:   garbage, podIP: "10.1.0.4", aside: true,
			wantAside: map[string][]byte{"nodes.conf.corrupt-1700000000": garbage},
			wantLogs:  []string{"corrupt nodes.conf moved aside: redis-server starts as a new node and must rejoin the cluster"},
		},
		"corrupt, aside name taken": {
			reason: "an earlier copy is not overwritten",
			file:   garbage, podIP: "10.1.0.4", aside: true, taken: true,
			wantAside: map[string][]byte{"nodes.conf.corrupt-1700000000": []byte("older"), "nodes.conf.corrupt-1700000000.1": garbage},
			wantLogs:  []string{"corrupt nodes.conf moved aside: redis-server starts as a new node and must rejoin the cluster"},
		},
		"bad pod IP": {
			reason: "POD_IP must be an IP",
			file:   real, podIP: "redis-0", want: real,
			wantErr: `--pod-ip (POD_IP) "redis-0" is not an IP address: set POD_IP from the downward API (fieldRef status.podIP)`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "nodes.conf")
			if tc.file != nil {
				if err := os.WriteFile(path, tc.file, 0o640); err != nil {
					t.Fatal(err)
				}
			}
			if tc.taken {
				if err := os.WriteFile(path+".corrupt-1700000000", []byte("older"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var before syscall.Stat_t
			_ = syscall.Stat(path, &before)
			var logs bytes.Buffer
			// No wait: one round of lookups (retries: agent's TestNodesConfRewriteRetries).
			c := &NodesconfRewriteCmd{NodesConf: path, PodIP: tc.podIP, MoveCorruptAside: tc.aside}
			err := c.rewrite(t.Context(), zerolog.New(&logs), fakeDNS(tc.dns), testingclock.NewFakeClock(time.Unix(1700000000, 0)))
			wantErr := strings.ReplaceAll(tc.wantErr, "FILE", path)
			switch {
			case err == nil && wantErr != "":
				t.Fatalf("%s: succeeded, want error %q", tc.reason, wantErr)
			case err != nil && wantErr == "":
				t.Fatalf("%s: %v", tc.reason, err)
			case err != nil:
				if diff := cmp.Diff(wantErr, err.Error()); diff != "" {
					t.Errorf("%s: error (-want +got):\n%s", tc.reason, diff)
				}
			}
			got, err := os.ReadFile(path)
			switch {
			case tc.want == nil && !errors.Is(err, os.ErrNotExist):
				t.Errorf("%s: nodes.conf exists afterwards (%v)", tc.reason, err)
			case tc.want != nil:
				if diff := cmp.Diff(string(tc.want), string(got)); diff != "" {
					t.Errorf("%s: nodes.conf (-want +got):\n%s", tc.reason, diff)
				}
			}
			if tc.want != nil && bytes.Equal(tc.want, tc.file) {
				var after syscall.Stat_t
				if err := syscall.Stat(path, &after); err != nil || after.Ino != before.Ino || after.Mtim != before.Mtim {
					t.Errorf("%s: unchanged nodes.conf was rewritten (inode %d->%d, mtime %v->%v)", tc.reason, before.Ino, after.Ino, before.Mtim, after.Mtim)
				}
			}
			for name, want := range tc.wantAside {
				got, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %s = %q, %v; want %q", tc.reason, name, got, err, want)
				}
			}
			var msgs []string
			dec := json.NewDecoder(&logs)
			for {
				var l struct{ Message string }
				if err := dec.Decode(&l); err != nil {
					break
				}
				msgs = append(msgs, l.Message)
			}
			if wantErr == "" {
				if diff := cmp.Diff(tc.wantLogs, msgs); diff != "" {
					t.Errorf("%s: log messages (-want +got):\n%s", tc.reason, diff)
				}
			}
		})
	}
}

// TestNodesconfRewriteDNSTimeout: peers are looked up at once, so slow DNS
// costs one --dns-timeout, not one per peer, and leaves peers as they were.
func TestNodesconfRewriteDNSTimeout(t *testing.T) {
	real, err := os.ReadFile(replicaConf)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nodes.conf")
	if err := os.WriteFile(path, real, 0o644); err != nil {
		t.Fatal(err)
	}
	hang := func(ctx context.Context, host string) ([]string, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	var logs bytes.Buffer
	c := &NodesconfRewriteCmd{NodesConf: path, PodIP: "10.1.0.4", DNSTimeout: 300 * time.Millisecond}
	start := time.Now()
	if err := c.rewrite(t.Context(), zerolog.New(&logs), hang, clock.RealClock{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("rewrite took %v with 4 hanging lookups and a 300ms timeout: lookups are not concurrent", d)
	}
	got, _ := os.ReadFile(path)
	want := strings.Replace(string(real), "127.0.10.4:", "10.1.0.4:", 1)
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("nodes.conf (-want +got):\n%s", diff)
	}
	if n := strings.Count(logs.String(), "context deadline exceeded"); n != 4 {
		t.Errorf("%d peers logged as timed out, want 4:\n%s", n, logs.String())
	}
}

// TestNodesconfRewriteExec runs the real command line in a child process
// (this test binary, re-entered through TestNodesconfExecHelperProcess):
// rewrite, then exec the command after --, as a container command would.
// The files used have no peer hostnames, so no DNS query leaves the host.
func TestNodesconfRewriteExec(t *testing.T) {
	dir := t.TempDir()
	conf, err := os.ReadFile("../../nodesconf/testdata/redis-6.conf")
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "nodes.conf")
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(good, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, conf[:len(conf)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		args    []string
		wantOut string
		wantErr bool
	}{
		"rewrite then exec": {
			args:    []string{"nodesconf", "rewrite", "--nodes-conf", good, "--", "sh", "-c", `grep -c "10.9.9.9:6379@16379 myself" "$0"; echo exec-ok`, good},
			wantOut: "1\nexec-ok\n",
		},
		"missing file then exec": {
			args:    []string{"nodesconf", "rewrite", "--nodes-conf", filepath.Join(dir, "none.conf"), "--", "sh", "-c", "echo exec-ok"},
			wantOut: "exec-ok\n",
		},
		"corrupt file: no exec": {
			args:    []string{"nodesconf", "rewrite", "--nodes-conf", bad, "--", "sh", "-c", "echo exec-ok"},
			wantErr: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestNodesconfExecHelperProcess$")
			cmd.Env = append(os.Environ(), "NODESCONF_HELPER_ARGS="+strings.Join(tc.args, "\x1f"), "POD_IP=10.9.9.9")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if tc.wantErr {
				if err == nil {
					t.Fatalf("succeeded, want failure; stdout %q", stdout.String())
				}
				if !strings.Contains(stderr.String(), bad+" is not a valid nodes.conf: line 6:") || strings.Contains(stdout.String(), "exec-ok") {
					t.Errorf("stderr %q, stdout %q: want the parse error naming the file and line, no exec", stderr.String(), stdout.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("%v; stderr:\n%s", err, stderr.String())
			}
			if diff := cmp.Diff(tc.wantOut, stdout.String()); diff != "" {
				t.Errorf("stdout of the exec'd command (-want +got):\n%s\nstderr:\n%s", diff, stderr.String())
			}
		})
	}
}

// TestNodesconfExecHelperProcess is the child of TestNodesconfRewriteExec;
// run directly it has nothing to do.
func TestNodesconfExecHelperProcess(t *testing.T) {
	args := os.Getenv("NODESCONF_HELPER_ARGS")
	if args == "" {
		return
	}
	// On success run execs and never returns.
	if err := run(strings.Split(args, "\x1f"), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "redis-ha-agent:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
