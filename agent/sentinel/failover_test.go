package sentinel

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

// failoverSentinel is a Sentinel that answers only SENTINEL FAILOVER and
// get-master-addr-by-name (master).
type failoverSentinel struct {
	sentinelNode
	name   string
	calls  *[]string
	err    error
	master string
}

func (f failoverSentinel) MasterAddr(ctx context.Context, name string) (string, int, bool, error) {
	return f.master, 6379, true, nil
}

func (f failoverSentinel) Failover(ctx context.Context, name string) error {
	*f.calls = append(*f.calls, f.name)
	return f.err
}

// serverError is an error reply from a server, as go-redis reports one.
type serverError string

func (e serverError) Error() string { return string(e) }
func (serverError) RedisError()     {}

var _ redis.Error = serverError("")

// The restarted master's own Sentinel restarted with it and knows no
// replica: a failover the agent asks for goes to the peers' Sentinels first,
// and a refusal moves on to the next Sentinel.
func TestAskFailoverPeersFirst(t *testing.T) {
	// A refusal that is final at once (NOGOODSLAVE would first RESET that
	// Sentinel and ask again for up to 5s, failoverOn's own business).
	noGood := serverError("ERR No such master with that name")
	cases := map[string]struct {
		errs      [3]error // Sentinels of pods 0, 1 (this pod), 2
		names     [3]int   // the pod each Sentinel names master (all 0: this pod, 1)
		wantCalls string
		wantErr   string
	}{
		"PeerStartsIt":          {errs: [3]error{nil, noGood, nil}, wantCalls: "s0"},
		"PeerRefusesNextDoes":   {errs: [3]error{noGood, noGood, nil}, wantCalls: "s0 s2"},
		"PeerInProgress":        {errs: [3]error{serverError("INPROG Failover already in progress"), nil, nil}, wantCalls: "s0"},
		"OnlyLocalKnowsReplica": {errs: [3]error{noGood, nil, noGood}, wantCalls: "s0 s2 s1"},
		"NoneCan":               {errs: [3]error{noGood, noGood, noGood}, wantCalls: "s0 s2 s1", wantErr: "no Sentinel started the failover"},
		// SENTINEL FAILOVER acts on the master that Sentinel names now: one
		// that switched to pod 2 already is not asked (it would move the
		// role off pod 2 and drop what pod 2 acknowledged).
		"PeerMovedOnIsNotAsked": {errs: [3]error{nil, nil, nil}, names: [3]int{2, 1, 1}, wantCalls: "s2"},
		"AllMovedOn":            {errs: [3]error{nil, nil, nil}, names: [3]int{2, 2, 2}, wantCalls: ""},
		"MovedOnAndRefused":     {errs: [3]error{noGood, nil, noGood}, names: [3]int{1, 2, 1}, wantCalls: "s0 s2"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var calls []string
			addr := func(i int) string { return fmt.Sprintf("redis-%d.redis-headless", i) }
			m := &sentinelMode{
				cfg:   config.Config{MasterName: "mymaster"},
				peers: sentinelPeers{Pods: 3, Self: 1, Timeout: time.Second, Addr: addr},
				deps:  sidecar.Deps{Clock: clock.RealClock{}},
				log:   zerolog.Nop(),
			}
			if tc.names == [3]int{} {
				tc.names = [3]int{1, 1, 1}
			}
			for i, e := range tc.errs {
				m.sentinels = append(m.sentinels, failoverSentinel{name: "s" + string(rune('0'+i)), calls: &calls, err: e, master: addr(tc.names[i])})
			}
			err := m.askFailover(context.Background(), sentinelPlan{Reason: "test"})
			if got := strings.Join(calls, " "); got != tc.wantCalls {
				t.Errorf("asked %q, want %q", got, tc.wantCalls)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
