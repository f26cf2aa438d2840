package cluster

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/redis-ha-agent/redis-ha-agent/nodesconf"
)

// runStepping runs r with a fake clock it steps by a second whenever the
// rewrite waits, as the real clock would pass.
func runStepping(t *testing.T, r NodesConfRewrite, log zerolog.Logger) (nodesconf.Result, error) {
	t.Helper()
	clk := testingclock.NewFakeClock(time.Unix(1700000000, 0))
	r.Clock = clk
	type out struct {
		res nodesconf.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := r.Run(t.Context(), log)
		done <- out{res, err}
	}()
	for {
		select {
		case o := <-done:
			return o.res, o.err
		case <-time.After(time.Millisecond):
			if clk.HasWaiters() {
				clk.Step(time.Second)
			}
		}
	}
}

func TestNodesConfRewriteRetries(t *testing.T) {
	peers := map[string]string{"node-1.test": "10.1.0.1", "node-2.test": "10.1.0.2", "node-3.test": "10.1.0.3", "node-5.test": "10.1.0.5"}
	cases := map[string]struct {
		reason     string
		wait       time.Duration
		dns        func(round int, host string) (string, bool)
		want       string // testdata file nodes.conf must equal afterwards
		wantRounds int
		wantErr    bool
	}{
		"late peer": {
			reason: "node-5 gets its DNS record in the third round: it is rewritten too",
			wait:   10 * time.Second,
			dns: func(round int, host string) (string, bool) {
				ip, ok := peers[host]
				return ip, ok && (host != "node-5.test" || round >= 3)
			},
			want:       "cluster-replica.all-rewritten.conf",
			wantRounds: 3,
		},
		"peer never resolves": {
			reason: "node-5 never resolves: the rest is rewritten once the wait is over, node-5 keeps its address",
			wait:   3 * time.Second,
			dns: func(_ int, host string) (string, bool) {
				ip, ok := peers[host]
				return ip, ok && host != "node-5.test"
			},
			want:       "cluster-replica.rewritten.conf",
			wantRounds: 4,
		},
		"lasting conflict": {
			reason: "node-2 resolves to node-1's new address for longer than the wait: the file stays as it was, without an error",
			wait:   2 * time.Second,
			dns: func(_ int, host string) (string, bool) {
				if host == "node-2.test" {
					return peers["node-1.test"], true
				}
				ip, ok := peers[host]
				return ip, ok
			},
			want:       "cluster-replica.conf",
			wantRounds: 3,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := copyTestdata(t, "cluster-replica.conf")
			var mu sync.Mutex
			seen := map[string]int{}
			dns := func(_ context.Context, host string) ([]string, error) {
				mu.Lock()
				seen[host]++
				round := seen[host]
				mu.Unlock()
				if ip, ok := tc.dns(round, host); ok {
					return []string{ip}, nil
				}
				return nil, &os.PathError{Op: "lookup", Path: host, Err: os.ErrNotExist}
			}
			var logs bytes.Buffer
			_, err := runStepping(t, NodesConfRewrite{Path: p, PodIP: "10.9.9.9", Wait: tc.wait, LookupHost: dns}, zerolog.New(&logs))
			if err != nil {
				t.Fatalf("%s: %v", tc.reason, err)
			}
			got, _ := os.ReadFile(p)
			want, _ := os.ReadFile(filepath.Join("testdata", tc.want))
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s: nodes.conf -want +got:\n%s", tc.reason, diff)
			}
			if n := seen["node-1.test"]; n != tc.wantRounds {
				t.Errorf("%s: %d rounds of lookups, want %d\n%s", tc.reason, n, tc.wantRounds, logs.String())
			}
			if r := strings.Count(logs.String(), "retrying"); r != tc.wantRounds-1 {
				t.Errorf("%s: %d retries logged, want %d", tc.reason, r, tc.wantRounds-1)
			}
		})
	}
}

func TestPickAddr(t *testing.T) {
	cases := map[string]struct {
		addrs   []string
		old     string
		want    string
		wantErr string
	}{
		"same family first":     {addrs: []string{"fd00::1", "10.0.0.1"}, old: "10.9.9.9", want: "10.0.0.1"},
		"IPv6 kept":             {addrs: []string{"10.0.0.1", "fd00::1"}, old: "fd00::9", want: "fd00::1"},
		"other family if alone": {addrs: []string{"fd00::1"}, old: "10.9.9.9", want: "fd00::1"},
		"no old address":        {addrs: []string{"fd00::1", "10.0.0.1"}, want: "fd00::1"},
		"mapped IPv4":           {addrs: []string{"::ffff:10.0.0.1"}, old: "10.9.9.9", want: "10.0.0.1"},
		"mapped old address":    {addrs: []string{"fd00::1", "10.0.0.1"}, old: "::ffff:10.9.9.9", want: "10.0.0.1"},
		"no IP":                 {addrs: []string{"not-an-ip"}, old: "10.9.9.9", wantErr: "node-1.test resolved to no IP address ([not-an-ip])"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var old netip.Addr
			if tc.old != "" {
				old = netip.MustParseAddr(tc.old)
			}
			got, err := pickAddr("node-1.test", tc.addrs, old)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Errorf("pickAddr = %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}
