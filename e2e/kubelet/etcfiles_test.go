package kubelet

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResolvConf(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team"}}
	want := "nameserver 10.96.0.10\nsearch team.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	if got := resolvConf(pod, "10.96.0.10", "cluster.local", ""); got != want {
		t.Errorf("ClusterFirst:\n%s\nwant\n%s", got, want)
	}
	two := "2"
	pod.Spec.DNSConfig = &v1.PodDNSConfig{Searches: []string{"x.example"}, Options: []v1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "edns0"}}}
	want = "nameserver 10.96.0.10\nsearch team.svc.cluster.local svc.cluster.local cluster.local x.example\noptions ndots:2 edns0\n"
	if got := resolvConf(pod, "10.96.0.10", "cluster.local", ""); got != want {
		t.Errorf("dnsConfig:\n%s\nwant\n%s", got, want)
	}
	pod.Spec.DNSPolicy, pod.Spec.DNSConfig = v1.DNSDefault, nil
	if got := resolvConf(pod, "10.96.0.10", "cluster.local", "nameserver 1.2.3.4\nsearch lan\n"); got != "nameserver 1.2.3.4\nsearch lan\n" {
		t.Errorf("Default:\n%s", got)
	}
}

func TestHostsFile(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "redis-1", Namespace: "ns"}, Spec: v1.PodSpec{Hostname: "redis-1", Subdomain: "redis-headless"}}
	got := hostsFile(pod, "10.244.0.9", "cluster.local")
	if want := "10.244.0.9\tredis-1.redis-headless.ns.svc.cluster.local\tredis-1\n"; !strings.HasSuffix(got, want) {
		t.Errorf("hosts:\n%s\nwant last line %q", got, want)
	}
	pod.Spec.Subdomain, pod.Spec.Hostname = "", ""
	got = hostsFile(pod, "10.244.0.9", "cluster.local")
	if want := "10.244.0.9\tredis-1\n"; !strings.HasSuffix(got, want) {
		t.Errorf("hosts without subdomain:\n%s", got)
	}
}
