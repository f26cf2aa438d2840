package realnodes

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// testExporter checks components/redis-exporter in the production
// overlay on every pod: the container runs the image's /redis_exporter,
// the password is in neither its environment nor its command line, and
// its /metrics (port 9121 on the pod IP, what Prometheus scrapes) says
// redis_up 1 and the role redis-server itself reports.
func testExporter(t *testing.T, ctx context.Context, ns, password string) {
	pods, err := cluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 3 {
		t.Fatalf("%d pods, want 3", len(pods.Items))
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: cluster.DialContext}}
	for _, p := range pods.Items {
		pid, err := cluster.ContainerPID(ctx, ns, p.Name, "redis-exporter")
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != "/redis_exporter" {
			t.Errorf("%s: redis-exporter container runs %q (%v), want the image's /redis_exporter", p.Name, exe, err)
		}
		for _, f := range []string{"environ", "cmdline"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), password) {
				t.Errorf("%s: the password is in redis_exporter's /proc/%d/%s", p.Name, pid, f)
			}
		}
		url := fmt.Sprintf("http://%s:9121/metrics", p.Status.PodIP)
		var up, role, last string
		// The first scrape can race the agent's first pass over a fresh
		// server (the role settles); a few seconds at most.
		err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			up, role, last = "", "", ""
			resp, err := client.Get(url)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				l := sc.Text()
				if v, ok := strings.CutPrefix(l, "redis_up "); ok {
					up = v
				}
				if strings.HasPrefix(l, "redis_instance_info{") {
					if _, r, ok := strings.Cut(l, `role="`); ok {
						role, _, _ = strings.Cut(r, `"`)
					}
				}
			}
			return up == "1", nil
		})
		if err != nil {
			t.Errorf("%s: GET %s: redis_up %q within 30s (%v; last error %q)", p.Name, url, up, err, last)
			continue
		}
		want := "slave"
		if p.Labels[roleLabel] == "master" {
			want = "master"
		}
		if role != want {
			t.Errorf("%s (label %s): redis_exporter reports role %q, want %q", p.Name, p.Labels[roleLabel], role, want)
		}
		t.Logf("%s: redis_exporter pid %d, redis_up 1, role %s", p.Name, pid, role)
	}
}
