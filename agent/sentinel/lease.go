package sentinel

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
)

// Why not client-go's leaderelection, which cluster mode's coordinator
// uses (cluster/kube.go): there the Lease is the only authority, and a
// plain campaign (acquire when expired, renew, step down) is exactly the
// job. Here the Lease records who is master, and Redis is the authority
// whenever it has an answer, which leaderelection cannot express:
//   - the pod a Sentinel majority names takes a live Lease over at once,
//     without waiting for it to expire;
//   - a stopping master hands it to a named pod (HandOver) in preStop;
//   - it is released when the local redis-server stops answering;
//   - whether to take, renew or release is decided by the reconcile pass
//     (decideSentinel) with the Lease as one input, not by a callback loop.
//
// Both keep to the same rules: compare-and-swap on resourceVersion, and
// expiry judged on the local monotonic clock from the last observed
// change.
//
// leaseStore reads and writes the StatefulSet's Lease. Identity is the pod
// name: it is stable across restarts, unique in the namespace, and it is
// what the role label and the /status of peers are keyed by. Every write is
// a compare-and-swap on the resourceVersion that was read, so two agents
// can never both believe their write won.
type leaseStore struct {
	client    kubeapi.Clients
	namespace string
	name      string
	identity  string
	clock     clock.Clock

	// mu serialises the loop's passes with the preStop hand-over.
	mu sync.Mutex
	// The record as last read and when, on the local monotonic clock, it
	// last changed — like client-go's leaderelection observedTime. Remote
	// renewTime stamps are never trusted: clocks differ between nodes.
	observed   *coordinationv1.Lease
	observedRV string
	observedAt time.Time
	// cachedAt is when the API server last told us the Lease's state, by
	// a read, a write or an event of a live watch; watching says that
	// watch is up, so Read may answer from observed without a GET.
	cachedAt time.Time
	watching bool
}

// leaseRecord is the Lease as the decision sees it.
type leaseRecord struct {
	Holder   string
	Live     bool
	Duration time.Duration
}

func newLeaseStore(client kubeapi.Clients, namespace, name, identity string, c clock.Clock) *leaseStore {
	if c == nil {
		c = clock.RealClock{}
	}
	return &leaseStore{client: client, namespace: namespace, name: name, identity: identity, clock: c}
}

// Holder is a one-off read for init, which cannot judge liveness (it has no
// history): callers check that the holder answers instead.
func (s *leaseStore) Holder(ctx context.Context) (string, error) {
	l, err := s.client.CoordinationV1().Leases(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read Lease %s/%s (needs RBAC get on leases): %w", s.namespace, s.name, err)
	}
	return ptr.Deref(l.Spec.HolderIdentity, ""), nil
}

// Read gets the Lease and judges it on the local clock. A missing Lease is
// free.
func (s *leaseStore) Read(ctx context.Context, defaultDuration time.Duration) (leaseRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A live watch delivers every write, so the last state it (or our own
	// write) gave is current; a holder renews well within half the
	// duration, so older news means a quiet or stalled watch: ask.
	if s.watching && !s.cachedAt.IsZero() && s.clock.Since(s.cachedAt) < defaultDuration/2 {
		return s.record(defaultDuration), nil
	}
	return s.read(ctx, defaultDuration)
}

func (s *leaseStore) read(ctx context.Context, defaultDuration time.Duration) (leaseRecord, error) {
	l, err := s.client.CoordinationV1().Leases(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s.observed, s.observedRV = nil, ""
		s.cachedAt = s.clock.Now()
		return leaseRecord{}, nil
	}
	if err != nil {
		return leaseRecord{}, fmt.Errorf("read Lease %s/%s (needs RBAC get on leases): %w", s.namespace, s.name, err)
	}
	s.observe(l)
	return s.record(defaultDuration), nil
}

func (s *leaseStore) observe(l *coordinationv1.Lease) {
	if l.ResourceVersion != s.observedRV {
		s.observedRV = l.ResourceVersion
		s.observedAt = s.clock.Now()
	}
	s.observed = l
	s.cachedAt = s.clock.Now()
}

// fromWatch takes a watched state unless it is older than what a read or
// our own write already gave (events can trail a write's response).
func (s *leaseStore) fromWatch(l *coordinationv1.Lease, deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if deleted {
		if s.observed != nil && !olderRV(s.observedRV, l.ResourceVersion) {
			return
		}
		s.observed, s.observedRV = nil, ""
		s.cachedAt = s.clock.Now()
		return
	}
	if s.observed != nil && !olderRV(s.observedRV, l.ResourceVersion) {
		s.cachedAt = s.clock.Now() // same (or older) state: still current
		return
	}
	s.observe(l)
}

func (s *leaseStore) setWatching(up bool) {
	s.mu.Lock()
	s.watching = up
	s.mu.Unlock()
}

// olderRV: resource versions are opaque, but etcd's are increasing
// integers; anything else counts as older when it differs.
func olderRV(have, got string) bool {
	h, err1 := strconv.ParseUint(have, 10, 64)
	g, err2 := strconv.ParseUint(got, 10, 64)
	if err1 != nil || err2 != nil {
		return have != got
	}
	return h < g
}

func (s *leaseStore) record(defaultDuration time.Duration) leaseRecord {
	if s.observed == nil {
		return leaseRecord{}
	}
	d := defaultDuration
	if sec := ptr.Deref(s.observed.Spec.LeaseDurationSeconds, 0); sec > 0 {
		d = time.Duration(sec) * time.Second
	}
	h := ptr.Deref(s.observed.Spec.HolderIdentity, "")
	return leaseRecord{Holder: h, Duration: d, Live: h != "" && s.clock.Since(s.observedAt) < d}
}

// Acquire takes the Lease for this pod (free, expired, or taken over on a
// Sentinel majority's word), or renews it when this pod holds it. It writes
// against the record last read: a conflict means someone else wrote first,
// and the next pass decides again on what they wrote.
func (s *leaseStore) Acquire(ctx context.Context, duration time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := metav1.NewMicroTime(s.clock.Now())
	leases := s.client.CoordinationV1().Leases(s.namespace)
	if s.observed == nil {
		l := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: ptr.To(s.identity), LeaseDurationSeconds: ptr.To(int32(duration / time.Second)),
				AcquireTime: &now, RenewTime: &now, LeaseTransitions: ptr.To(int32(0)),
			},
		}
		created, err := leases.Create(ctx, l, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create Lease %s/%s (needs RBAC create on leases): %w", s.namespace, s.name, err)
		}
		s.observe(created)
		return nil
	}
	l := s.observed.DeepCopy()
	if ptr.Deref(l.Spec.HolderIdentity, "") != s.identity {
		l.Spec.HolderIdentity = ptr.To(s.identity)
		l.Spec.AcquireTime = &now
		l.Spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
	}
	l.Spec.LeaseDurationSeconds = ptr.To(int32(duration / time.Second))
	l.Spec.RenewTime = &now
	updated, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("write Lease %s/%s as %s (resourceVersion %s; needs RBAC update on leases): %w", s.namespace, s.name, s.identity, l.ResourceVersion, err)
	}
	s.observe(updated)
	return nil
}

// Release gives the Lease up if this pod still holds it in the record last
// read, so a successor need not wait for it to expire.
func (s *leaseStore) Release(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.observed == nil || ptr.Deref(s.observed.Spec.HolderIdentity, "") != s.identity {
		return nil
	}
	l := s.observed.DeepCopy()
	l.Spec.HolderIdentity = nil
	l.Spec.AcquireTime, l.Spec.RenewTime = nil, nil
	updated, err := s.client.CoordinationV1().Leases(s.namespace).Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("release Lease %s/%s (resourceVersion %s): %w", s.namespace, s.name, l.ResourceVersion, err)
	}
	s.observe(updated)
	return nil
}

// HandOver gives the Lease to another pod, if this pod holds it: the planned
// switchover's old master knows the new one the moment Sentinel promotes it,
// before any Sentinel majority says so.
func (s *leaseStore) HandOver(ctx context.Context, to string, duration time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.read(ctx, duration); err != nil {
		return err
	}
	if s.observed == nil || ptr.Deref(s.observed.Spec.HolderIdentity, "") != s.identity {
		return nil
	}
	now := metav1.NewMicroTime(s.clock.Now())
	l := s.observed.DeepCopy()
	l.Spec.HolderIdentity = ptr.To(to)
	l.Spec.AcquireTime, l.Spec.RenewTime = &now, &now
	l.Spec.LeaseDurationSeconds = ptr.To(int32(duration / time.Second))
	l.Spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
	updated, err := s.client.CoordinationV1().Leases(s.namespace).Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("hand Lease %s/%s to %s (resourceVersion %s): %w", s.namespace, s.name, to, l.ResourceVersion, err)
	}
	s.observe(updated)
	return nil
}

// Watch calls changed whenever the Lease's holder changes, until ctx ends,
// so agents react to a hand-over or takeover at once instead of at their
// next resync; renewals do not wake anyone. A broken watch is
// re-established after a pause. A failing watch is reported through
// failed (each new message once), since agents then fall back to their
// periodic passes and react late.
func (s *leaseStore) Watch(ctx context.Context, changed func(), failed func(error)) {
	last := "\x00"
	lastErr := ""
	report := func(err error) {
		if err != nil && err.Error() != lastErr && ctx.Err() == nil {
			lastErr = err.Error()
			failed(err)
		}
	}
	for ctx.Err() == nil {
		pause := time.Second
		w, err := s.client.CoordinationV1().Leases(s.namespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + s.name})
		switch {
		case watchCacheLagging(err):
			// The API server's watch cache has not caught up with etcd
			// yet (it answers so after 3 s); that passes by itself.
			pause = 100 * time.Millisecond
		case err != nil:
			report(fmt.Errorf("watch Lease %s/%s (needs RBAC watch on leases): %w", s.namespace, s.name, err))
		default:
			s.setWatching(true)
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					if err := apierrors.FromObject(ev.Object); watchCacheLagging(err) {
						pause = 100 * time.Millisecond
					} else {
						report(fmt.Errorf("watch Lease %s/%s: %w", s.namespace, s.name, err))
					}
					continue
				}
				l, ok := ev.Object.(*coordinationv1.Lease)
				if !ok {
					continue
				}
				s.fromWatch(l, ev.Type == watch.Deleted)
				if h := ptr.Deref(l.Spec.HolderIdentity, ""); h != last {
					last = h
					changed()
				}
			}
			s.setWatching(false)
			w.Stop()
		}
		select {
		case <-ctx.Done():
		case <-s.clock.After(pause):
		}
	}
}

// watchCacheLagging: the API server answers a watch whose start its watch
// cache has not reached yet with a Timeout whose cause is
// ResourceVersionTooLarge; a retry soon succeeds.
func watchCacheLagging(err error) bool {
	return apierrors.IsTimeout(err) && apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge)
}
