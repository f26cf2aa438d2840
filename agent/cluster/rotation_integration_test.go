package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

// TestClusterPasswordRotationStaggered rotates each pod's copy of the
// password two seconds apart (as kubelets update Secret volumes) while a
// client writes through the cluster and replication links break and
// reconnect, and checks that no node refused a
// login at any moment, no replication link failed on auth, every write
// answered OK is still there, and at the end only the new password works
// and every masterauth uses it.
func TestClusterPasswordRotationStaggered(t *testing.T) {
	const n = 6
	c := newTestCluster(t, 48, "replica")
	c.grace = 3 * time.Second
	p1, p2 := "p1-before-rotation", "p2-after-rotation"
	c.password.Store(p1)
	formCluster(t, c, n)
	ctx := context.Background()
	observe := func(o int) *redis.Client {
		return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", c.ipOf(o), testRedisPort), Protocol: 2, DisableIdentity: true,
			Username: proctest.Observer, Password: proctest.ObserverPass, DialTimeout: time.Second, ReadTimeout: time.Second, PoolSize: 1})
	}
	var watches []*proctest.LoginWatch
	logStart := map[string]int64{}
	for o := 0; o < n; o++ {
		watches = append(watches, proctest.StartLoginWatch(t, fmt.Sprintf("redis-server %d", o), c.client(o)))
		path := filepath.Join(c.pods[o].dir, "redis.log")
		logStart[path] = proctest.LogOffset(path)
	}

	cc := c.clusterClient()
	var mu sync.Mutex
	var ok []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("w:%d", i)
			if err := cc.Set(ctx, k, i, 0).Err(); err == nil {
				mu.Lock()
				ok = append(ok, k)
				mu.Unlock()
			}
		}
	}()
	// A second after each change, every replication link breaks (as in a
	// network blip) and reconnects with the replica's masterauth: a link
	// that stays up never logs in again, so without this the rotation
	// could look clean when it is not.
	killLinks := func() {
		for o := 0; o < n; o++ {
			cl := observe(o)
			if err := cl.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
				t.Errorf("CLIENT KILL TYPE replica on pod %d: %v", o, err)
			}
			cl.Close()
		}
	}
	start := time.Now()
	for o := 0; o < n; o++ {
		c.rotateOn(o, p2)
		time.Sleep(time.Second)
		killLinks()
		time.Sleep(time.Second)
	}
	proctest.Eventually(t, 30*time.Second, func() error {
		for o := 0; o < n; o++ {
			cl := observe(o)
			hs, err := proctest.DefaultUserPasswords(cl)
			cl.Close()
			if err != nil || !slices.Contains(hs, proctest.PasswordHash(p2)) {
				return fmt.Errorf("pod %d does not accept the new password yet (%v)", o, err)
			}
		}
		return nil
	}, "every node accepts the new password")
	c.password.Store(p2) // the application moves, before the grace ends
	proctest.Eventually(t, 60*time.Second, func() error {
		for o := 0; o < n; o++ {
			cl := observe(o)
			hs, err := proctest.DefaultUserPasswords(cl)
			ma, merr := cl.ConfigGet(ctx, "masterauth").Result()
			cl.Close()
			if err != nil || merr != nil || len(hs) != 1 || hs[0] != proctest.PasswordHash(p2) || ma["masterauth"] != p2 {
				return fmt.Errorf("pod %d: %d passwords, only the new one %t, masterauth new %t (%v %v)", o, len(hs), len(hs) == 1 && hs[0] == proctest.PasswordHash(p2), ma["masterauth"] == p2, err, merr)
			}
		}
		return nil
	}, "only the new password accepted, masterauth on it everywhere")
	took := time.Since(start)
	proctest.Eventually(t, 30*time.Second, func() error { return c.healthy(n) }, "healthy after the rotation")
	close(stop)
	<-done
	mu.Lock()
	written := slices.Clone(ok)
	mu.Unlock()
	t.Logf("staggered rotation (2 s between pods) done %s after the first change; %d writes answered OK", took.Round(time.Millisecond), len(written))
	if len(written) == 0 {
		t.Fatal("the writer got no write through during the rotation")
	}
	var missing []string
	for _, k := range written {
		if err := cc.Get(ctx, k).Err(); err != nil {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d writes answered OK are missing: %s", len(missing), len(written), strings.Join(missing[:min(len(missing), 10)], " "))
	}
	for o := 0; o < n; o++ {
		cl := observe(o)
		watches[o].Check(t, cl)
		cl.Close()
	}
	for path, off := range logStart {
		proctest.AuthErrorsSince(t, path, off)
	}
	// Last, as it counts as a refused login.
	for o := 0; o < n; o++ {
		cl := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("%s:%d", c.ipOf(o), testRedisPort), Protocol: 2, DisableIdentity: true, Password: p1, MaxRetries: -1})
		err := cl.Ping(ctx).Err()
		cl.Close()
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("pod %d with the old password: %v, want WRONGPASS", o, err)
		}
	}
}
