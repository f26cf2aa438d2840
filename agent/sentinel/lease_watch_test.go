package sentinel

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// An API server whose watch cache lags etcd answers a new watch with
// "Too large resource version" (a Timeout). That passes by itself: Watch
// retries soon and reports nothing; any other error is reported.
func TestLeaseWatchRetriesALaggingWatchCacheQuietly(t *testing.T) {
	tooLarge := apierrors.NewTimeoutError("Too large resource version: 185, current: 184", 3)
	tooLarge.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge}}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "redis", nil)
	for _, tc := range []struct {
		name       string
		err        error
		viaEvent   bool
		wantReport bool
	}{
		{"watch call: too large resource version", tooLarge, false, false},
		{"watch event: too large resource version", tooLarge, true, false},
		{"watch call: forbidden", forbidden, false, true},
		{"watch event: forbidden", forbidden, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			var calls atomic.Int32
			good := watch.NewFake()
			client.PrependWatchReactor("leases", func(k8stesting.Action) (bool, watch.Interface, error) {
				if calls.Add(1) > 1 {
					return true, good, nil
				}
				if !tc.viaEvent {
					return true, nil, tc.err
				}
				bad := watch.NewFake()
				go func() {
					st := tc.err.(apierrors.APIStatus).Status()
					bad.Error(&st)
					bad.Stop()
				}()
				return true, bad, nil
			})
			s := newLeaseStore(client, "ns", "redis", "redis-0", nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var reports atomic.Int32
			changed := make(chan struct{}, 4)
			done := make(chan struct{})
			go func() {
				s.Watch(ctx, func() { changed <- struct{}{} }, func(error) { reports.Add(1) })
				close(done)
			}()
			go good.Add(&coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: "ns"},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("redis-1")},
			})
			select {
			case <-changed:
			case <-time.After(5 * time.Second):
				t.Fatal("no event from the retried watch within 5s")
			}
			cancel()
			good.Stop()
			<-done
			if got := reports.Load() > 0; got != tc.wantReport {
				t.Errorf("reported = %v, want %v (%v)", got, tc.wantReport, tc.err)
			}
		})
	}
}
