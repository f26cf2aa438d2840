package sentinel

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

// TestLeaseStore runs the Lease's compare-and-swap and local-clock expiry
// against a real kube-apiserver, with fake clocks for the two agents.
func TestLeaseStore(t *testing.T) {
	rc, _ := proctest.StartAPIServer(t)
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const d = 15 * time.Second
	ca, cb := clocktesting.NewFakeClock(t0), clocktesting.NewFakeClock(t0)
	a := newLeaseStore(kube, "default", "redis", "redis-0", ca)
	b := newLeaseStore(kube, "default", "redis", "redis-1", cb)

	if r, err := a.Read(ctx, d); err != nil || r.Holder != "" || r.Live {
		t.Fatalf("fresh Lease: got %+v, %v; want free", r, err)
	}
	if err := a.Acquire(ctx, d); err != nil {
		t.Fatalf("a acquires a free Lease: %v", err)
	}
	if r, _ := b.Read(ctx, d); r.Holder != "redis-0" || !r.Live {
		t.Fatalf("b sees %+v, want live holder redis-0", r)
	}
	// a renews; b's record is now stale, so its write must conflict.
	ca.Step(2 * time.Second)
	if err := a.Acquire(ctx, d); err != nil {
		t.Fatalf("a renews: %v", err)
	}
	if err := b.Acquire(ctx, d); !apierrors.IsConflict(unwrapAll(err)) {
		t.Fatalf("b writes over a record it read before a's renewal: got %v, want a Conflict", err)
	}
	// b's clock: the record changed (a's renewal) when b read it again, so
	// expiry counts from that read, not from the remote renewTime.
	if r, _ := b.Read(ctx, d); !r.Live {
		t.Fatalf("b right after a's renewal: %+v, want live", r)
	}
	cb.Step(d - time.Millisecond)
	if r, _ := b.Read(ctx, d); !r.Live {
		t.Fatalf("b %s after the last change: %+v, want still live", d-time.Millisecond, r)
	}
	cb.Step(time.Millisecond)
	if r, _ := b.Read(ctx, d); r.Live {
		t.Fatalf("b %s after the last change: %+v, want expired", d, r)
	}
	if err := b.Acquire(ctx, d); err != nil {
		t.Fatalf("b takes the expired Lease over: %v", err)
	}
	// a's last read is stale: its renewal conflicts and it learns it lost.
	if err := a.Acquire(ctx, d); !apierrors.IsConflict(unwrapAll(err)) {
		t.Fatalf("a renews after b took over: got %v, want a Conflict", err)
	}
	if r, _ := a.Read(ctx, d); r.Holder != "redis-1" {
		t.Fatalf("a sees holder %q, want redis-1", r.Holder)
	}
	// Release by a non-holder is a no-op; by the holder it frees the Lease.
	if err := a.Release(ctx); err != nil {
		t.Fatalf("a releases a Lease it does not hold: %v", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatalf("b releases: %v", err)
	}
	if r, _ := a.Read(ctx, d); r.Holder != "" || r.Live {
		t.Fatalf("after release: %+v, want free", r)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

// countingRT counts GET requests for Leases that pass through it.
type countingRT struct {
	next http.RoundTripper
	gets atomic.Int64
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/leases/") && r.URL.Query().Get("watch") == "" {
		c.gets.Add(1)
	}
	return c.next.RoundTrip(r)
}

// TestLeaseStoreReadsFromItsWatch: while its watch is up, Read answers from
// the events (another agent's renewals and hand-over) without a GET; a
// quiet watch (older than half the duration) or none at all means a GET.
func TestLeaseStoreReadsFromItsWatch(t *testing.T) {
	rc, _ := proctest.StartAPIServer(t)
	counter := &countingRT{}
	rcA := rest.CopyConfig(rc)
	rcA.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	kubeA, err := kubernetes.NewForConfig(rcA)
	if err != nil {
		t.Fatal(err)
	}
	kubeB, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const d = 15 * time.Second
	ca := clocktesting.NewFakeClock(t0)
	a := newLeaseStore(kubeA, "default", "watched", "redis-0", ca)
	b := newLeaseStore(kubeB, "default", "watched", "redis-1", nil)
	if err := b.Acquire(ctx, d); err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 16)
	watchCtx, stopWatch := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		a.Watch(watchCtx, func() { changed <- struct{}{} }, func(err error) { t.Errorf("watch: %v", err) })
		close(done)
	}()
	// The watch's first event says redis-1 holds it. b keeps renewing
	// meanwhile: with etcd 3.4 (no progress notifications) the API server's
	// watch cache moves only on a Lease write, and a new watch is refused
	// ("Too large resource version") while the cache lags etcd.
	first := time.After(20 * time.Second)
	for waiting := true; waiting; {
		select {
		case <-changed:
			waiting = false
		case <-time.After(300 * time.Millisecond):
			if err := b.Acquire(ctx, d); err != nil {
				t.Fatalf("b renews: %v", err)
			}
			// A refused watch waits (on a's clock) before it retries.
			if ca.HasWaiters() {
				ca.Step(time.Second)
			}
		case <-first:
			t.Fatal("no first watch event within 20s")
		}
	}
	base := counter.gets.Load()
	waitHolder := func(want string) leaseRecord {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, err := a.Read(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if r.Holder == want || time.Now().After(deadline) {
				return r
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := 0; i < 3; i++ {
		if err := b.Acquire(ctx, d); err != nil {
			t.Fatalf("b renews: %v", err)
		}
	}
	if err := b.HandOver(ctx, "redis-2", d); err != nil {
		t.Fatal(err)
	}
	if r := waitHolder("redis-2"); r.Holder != "redis-2" || !r.Live {
		t.Fatalf("a reads %+v after the hand-over; want live holder redis-2", r)
	}
	if n := counter.gets.Load() - base; n != 0 {
		t.Errorf("a made %d GETs while its watch was up; want 0", n)
	}
	// Nothing for half the duration: a asks the API server.
	ca.Step(d / 2)
	if _, err := a.Read(ctx, d); err != nil {
		t.Fatal(err)
	}
	if n := counter.gets.Load() - base; n != 1 {
		t.Errorf("a made %d GETs reading a quiet watch's state; want 1", n)
	}
	// Without a watch every Read is a GET.
	stopWatch()
	<-done
	for i := 0; i < 2; i++ {
		if _, err := a.Read(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if n := counter.gets.Load() - base; n != 3 {
		t.Errorf("a made %d GETs in all, want 3 (1 + 2 without a watch)", n)
	}
}
