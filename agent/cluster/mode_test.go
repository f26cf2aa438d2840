package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

var _ clusterNodeAPI = (*fakeNode)(nil)

// fakeNode is a redis-server whose answers the test sets; calls it does not
// set fail the test through the nil function.
type fakeNode struct {
	ping        func() error
	nodes       func() ([]clusterNode, error)
	clusterInfo func() (map[string]string, error)
	replication func() (redisx.ReplInfo, error)
	failover    func() error
	configSet   func(param, value string) error
}

func (f *fakeNode) Ping(context.Context) error                   { return f.ping() }
func (f *fakeNode) Nodes(context.Context) ([]clusterNode, error) { return f.nodes() }
func (f *fakeNode) ClusterInfo(context.Context) (map[string]string, error) {
	return f.clusterInfo()
}
func (f *fakeNode) Replication(context.Context) (redisx.ReplInfo, error) {
	return f.replication()
}
func (f *fakeNode) DBSize(context.Context) (int64, error)   { return 0, nil }
func (f *fakeNode) Meet(context.Context, string, int) error { return errors.New("unexpected MEET") }
func (f *fakeNode) AddSlots(context.Context, []slotRange) error {
	return errors.New("unexpected ADDSLOTS")
}
func (f *fakeNode) Replicate(context.Context, string) error {
	return errors.New("unexpected REPLICATE")
}
func (f *fakeNode) Forget(context.Context, string) error { return errors.New("unexpected FORGET") }
func (f *fakeNode) Failover(context.Context) error       { return f.failover() }
func (f *fakeNode) SetSlot(context.Context, []int, string, string) ([]error, error) {
	return nil, errors.New("unexpected SETSLOT")
}
func (f *fakeNode) KeysInSlots(context.Context, []int, int) (map[int][]string, error) {
	return nil, errors.New("unexpected GETKEYSINSLOT")
}
func (f *fakeNode) ConfigSet(_ context.Context, param, value string) error {
	return f.configSet(param, value)
}
func (f *fakeNode) ConfigGet(context.Context, string) (string, error) {
	return "", errors.New("unexpected CONFIG GET")
}
func (f *fakeNode) ACLSetUser(context.Context, string, []string) error { return nil }

func (f *fakeNode) ACLOnlyPassword(context.Context, string, string) error { return nil }

func (f *fakeNode) ACLDryRun(context.Context, string, []string) (string, error) { return "", nil }

func (f *fakeNode) ACLPasswords(context.Context, string) ([]string, error) {
	return nil, errors.New("unexpected ACL GETUSER")
}
func (f *fakeNode) ACLAddPassword(context.Context, string, string) error {
	return errors.New("unexpected ACL SETUSER")
}
func (f *fakeNode) Migrate(context.Context, string, int, map[int][]string, string, string, time.Duration) error {
	return errors.New("unexpected MIGRATE")
}

func fakeClusterMode(t *testing.T, expected int, nodes map[string]*fakeNode) *clusterMode {
	cfg := config.Config{Identity: config.Identity{PodName: "redis-0", StatefulSet: "redis", Service: "redis-headless", Namespace: "ns", Domain: "cluster.local", PodIP: "10.0.0.1"},
		RedisPort: 6379, ResyncInterval: time.Second}
	return newClusterModeWith(cfg, clusterEnv{
		Topology: &fakeTopology{expected: func() int { return expected }},
		Dial: func(ip string, port int) clusterNodeAPI {
			n, ok := nodes[ip]
			if !ok {
				t.Fatalf("dialled %s:%d, which the test does not know", ip, port)
			}
			return n
		},
	})
}

func TestClusterModeLive(t *testing.T) {
	for name, tc := range map[string]struct {
		err     error
		wantErr bool
	}{
		"Pong":    {nil, false},
		"Loading": {errors.New("LOADING Redis is loading the dataset in memory"), false},
		"Down":    {errors.New("dial tcp 10.0.0.1:6379: connect: connection refused"), true},
	} {
		t.Run(name, func(t *testing.T) {
			m := fakeClusterMode(t, 6, map[string]*fakeNode{"10.0.0.1": {ping: func() error { return tc.err }}})
			if err := m.Live(context.Background()); (err != nil) != tc.wantErr {
				t.Errorf("Live() = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestClusterModePreStopReturnsAtOnce(t *testing.T) {
	replicaView := []clusterNode{
		{ID: "m", IP: "10.0.0.2", Port: 6379, Flags: []string{"master"}, Slots: []slotRange{{0, 16383}}},
		{ID: "r", IP: "10.0.0.1", Port: 6379, Flags: []string{"myself", "slave"}, MasterID: "m"},
	}
	lonelyMaster := []clusterNode{{ID: "m", IP: "10.0.0.1", Port: 6379, Flags: []string{"myself", "master"}, Slots: []slotRange{{0, 16383}}}}
	noFailover := func() error { return errors.New("CLUSTER FAILOVER must not be sent") }
	for name, view := range map[string][]clusterNode{"Replica": replicaView, "MasterWithoutReplica": lonelyMaster} {
		t.Run(name, func(t *testing.T) {
			local := &fakeNode{
				nodes:       func() ([]clusterNode, error) { return view, nil },
				replication: func() (redisx.ReplInfo, error) { return redisx.ReplInfo{Role: redisx.RoleMaster}, nil },
				failover:    noFailover,
			}
			m := fakeClusterMode(t, 6, map[string]*fakeNode{"10.0.0.1": local})
			if err := m.PreStop(context.Background()); err != nil {
				t.Errorf("PreStop() = %v, want nil at once", err)
			}
		})
	}
}

func TestClusterModeReady(t *testing.T) {
	view := []clusterNode{
		{ID: "m", IP: "10.0.0.2", Port: 6379, Flags: []string{"master"}, Slots: []slotRange{{0, 16383}}},
		{ID: "r", IP: "10.0.0.1", Port: 6379, Flags: []string{"myself", "slave"}, MasterID: "m"},
	}
	local := &fakeNode{
		nodes:       func() ([]clusterNode, error) { return view, nil },
		clusterInfo: func() (map[string]string, error) { return map[string]string{"cluster_state": "ok"}, nil },
		// The trap from DESIGN.md: ok everywhere, but the replica follows
		// an address that is not its master's any more.
		replication: func() (redisx.ReplInfo, error) {
			return redisx.ReplInfo{Role: redisx.RoleReplica, LinkUp: true, MasterHost: "10.0.0.9", MasterPort: 6379}, nil
		},
	}
	m := fakeClusterMode(t, 6, map[string]*fakeNode{"10.0.0.1": local})
	if err := m.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "stale address") {
		t.Errorf("Ready() = %v, want not ready: the replica follows a stale address", err)
	}
}

// A password turned on (no rotation possible) is applied at once.
func TestClusterModeAppliesPlainPassword(t *testing.T) {
	var got []string
	local := &fakeNode{configSet: func(param, value string) error {
		got = append(got, param+"="+value)
		return nil
	}}
	m := fakeClusterMode(t, 6, map[string]*fakeNode{"10.0.0.1": local})
	if err := (clusterRotation{m}).Plain(context.Background(), "new-secret"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"masterauth=new-secret", "requirepass=new-secret"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("CONFIG SET calls %v, want %v (masterauth first)", got, want)
	}
}
