package demo

import (
	"testing"
	"time"
)

// Lines as the cluster daemon's log has them (zerolog's console format;
// build-k8s.sh's stderr has no level, printed ???).
func TestQuietLine(t *testing.T) {
	tests := map[string]struct {
		elapsed time.Duration
		lastLog string
		want    string
	}{
		"building Kubernetes": {
			elapsed: 150 * time.Second,
			lastLog: "2026-12-07T01:00:00Z ??? building kube-apiserver v1.34.4 component=build-k8s run=2e73e0",
			want:    "… 2m30s so far, the daemon log's last line: building kube-apiserver v1.34.4 component=build-k8s (built once: Kubernetes and the images took 8.7 min of a cold make demo on 2 cores)",
		},
		"building an image": {
			elapsed: 61400 * time.Millisecond,
			lastLog: "2026-12-07T01:00:00Z INF building redis-7.0 (mmdebstrap bookworm) ... component=images run=2e73e0",
			want:    "… 1m01s so far, the daemon log's last line: building redis-7.0 (mmdebstrap bookworm) ... component=images (built once: Kubernetes and the images took 8.7 min of a cold make demo on 2 cores)",
		},
		"local time": {
			elapsed: 30 * time.Second,
			lastLog: "2026-12-07T02:00:00+01:00 INF phase done phase=etcd run=2e73e0 took=1.2",
			want:    "… 30.00s so far, the daemon log's last line: phase done phase=etcd took=1.2",
		},
		"a slow phase": {
			elapsed: 30 * time.Second,
			lastLog: "2026-12-06T23:20:20Z INF phase done phase=apiserver run=2e73e0 took=14.560126",
			want:    "… 30.00s so far, the daemon log's last line: phase done phase=apiserver took=14.560126",
		},
		"a go line without a prefix, cut at 100 characters": {
			elapsed: 30 * time.Second,
			lastLog: "go: downloading k8s.io/kubernetes v1.34.4 k8s.io/apiserver v0.34.4 k8s.io/client-go v0.34.4 k8s.io/api v0.34.4",
			want:    "… 30.00s so far, the daemon log's last line: go: downloading k8s.io/kubernetes v1.34.4 k8s.io/apiserver v0.34.4 k8s.io/client-go v0.34.4 k8s.i...",
		},
		"empty log": {
			elapsed: 30 * time.Second,
			want:    "… 30.00s so far, the daemon log's last line: (empty)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := quietLine(tc.elapsed, tc.lastLog); got != tc.want {
				t.Errorf("quietLine(%s, %q)\n got %q\nwant %q", tc.elapsed, tc.lastLog, got, tc.want)
			}
		})
	}
}
