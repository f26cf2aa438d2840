package sidecar

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestPreStopVerdict: /prestop hands over only for a deletion of this very
// pod; a call while the pod lives (from another pod, or a container
// restart) is refused with a reason.
func TestPreStopVerdict(t *testing.T) {
	deleting := metav1.NewTime(time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC))
	pod := func(uid types.UID, del *metav1.Time) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "redis-0", UID: uid, DeletionTimestamp: del}}
	}
	cases := map[string]struct {
		reason string
		pod    *corev1.Pod
		ownUID types.UID
		want   bool
		says   string
	}{
		"Living": {
			reason: "a GET from another pod while this one runs",
			pod:    pod("a", nil), ownUID: "a", want: false, says: "not being deleted",
		},
		"LivingUIDNotSeenYet": {
			reason: "the first read: nothing to compare with",
			pod:    pod("a", nil), want: false, says: "not being deleted",
		},
		"BeingDeleted": {
			reason: "kubectl delete pod, a drain, a rolling update",
			pod:    pod("a", &deleting), ownUID: "a", want: true, says: "deletionTimestamp 2026-12-06T04:00:00Z",
		},
		"Gone": {
			reason: "deleted with no grace period: the object is already gone",
			pod:    nil, ownUID: "a", want: true, says: "gone",
		},
		"Replaced": {
			reason: "force-deleted and already replaced by the StatefulSet",
			pod:    pod("b", nil), ownUID: "a", want: true, says: "new pod",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, why := preStopVerdict(tc.pod, tc.ownUID)
			if got != tc.want || !strings.Contains(why, tc.says) {
				t.Errorf("%s: preStopVerdict = %t %q, want %t saying %q", tc.reason, got, why, tc.want, tc.says)
			}
		})
	}
}
