package manifests

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// clientLabel is the label components/networkpolicy admits application
// clients by; same prefix as the agent's role label.
const clientLabel = "redis-ha-agent/client"

// servedPorts are the TCP ports the StatefulSet's pods serve, read from
// the pod template; 0 where the build has none.
type servedPorts struct {
	redis, sentinel, bus, agent, exporter int32
}

func portsOf(t *testing.T, b *built, mode string) servedPorts {
	t.Helper()
	spec := &b.sts.Spec.Template.Spec
	var p servedPorts
	if c := findContainer(spec.Containers, "redis"); c != nil && len(c.Ports) > 0 {
		p.redis = c.Ports[0].ContainerPort
		for _, cp := range c.Ports {
			if cp.Name == "redis" {
				p.redis = cp.ContainerPort
			}
		}
	}
	if p.redis == 0 {
		t.Fatalf("container redis declares no port")
	}
	if mode == "cluster" {
		// Redis Cluster's bus listens on the client port + 10000 (no
		// cluster-port in the configs).
		p.bus = p.redis + 10000
	}
	if c := findContainer(spec.InitContainers, "sentinel"); c != nil && len(c.Ports) > 0 {
		p.sentinel = c.Ports[0].ContainerPort
	}
	if c := findContainer(spec.Containers, exporterContainer); c != nil && len(c.Ports) > 0 {
		p.exporter = c.Ports[0].ContainerPort
	}
	if c := findContainer(spec.InitContainers, "agent"); c != nil && len(c.Ports) > 0 {
		p.agent = c.Ports[0].ContainerPort
		for _, e := range c.Env {
			if e.Name != "REDIS_HA_HTTP_ADDR" {
				continue
			}
			_, port, err := net.SplitHostPort(e.Value)
			if err != nil || port != strconv.Itoa(int(p.agent)) {
				t.Errorf("agent container declares port %d but REDIS_HA_HTTP_ADDR is %q", p.agent, e.Value)
			}
		}
	}
	return p
}

// source is a pod that opens a connection to one of the StatefulSet's pods.
type source struct {
	name      string
	namespace string
	labels    labels.Set
}

// nsLabels are the labels Kubernetes puts on every namespace.
func (s source) nsLabels() labels.Set {
	return labels.Set{"kubernetes.io/metadata.name": s.namespace}
}

func selectorMatches(t *testing.T, sel *metav1.LabelSelector, set labels.Set) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("label selector %v: %v", sel, err)
	}
	return s.Matches(set)
}

// admitted reports whether the policies (all in namespace ns) let src open
// a TCP connection to a pod of template on port, as an enforcing CNI reads
// them: a pod no ingress policy selects takes everything; a selected pod
// takes what at least one rule of one of them allows. An ipBlock is taken
// to cover every pod (it may).
func admitted(t *testing.T, policies map[string]*networkingv1.NetworkPolicy, ns string, template *corev1.PodTemplateSpec, src source, port int32) bool {
	t.Helper()
	podLabels := labels.Set{roleLabel: "master"}
	for k, v := range template.Labels {
		podLabels[k] = v
	}
	isolated := false
	for _, p := range policies {
		if !selectorMatches(t, &p.Spec.PodSelector, podLabels) {
			continue
		}
		if len(p.Spec.PolicyTypes) > 0 && !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		isolated = true
		for _, r := range p.Spec.Ingress {
			if rulePortMatches(r.Ports, &template.Spec, port) && ruleFromMatches(t, r.From, ns, src) {
				return true
			}
		}
	}
	return !isolated
}

func rulePortMatches(ports []networkingv1.NetworkPolicyPort, spec *corev1.PodSpec, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.IntVal != 0 && p.Port.IntVal == port:
			return true
		case p.Port.IntVal != 0 && p.EndPort != nil && port >= p.Port.IntVal && port <= *p.EndPort:
			return true
		case p.Port.StrVal != "":
			for _, c := range allContainers(spec) {
				for _, cp := range c.Ports {
					if cp.Name == p.Port.StrVal && cp.ContainerPort == port {
						return true
					}
				}
			}
		}
	}
	return false
}

func ruleFromMatches(t *testing.T, from []networkingv1.NetworkPolicyPeer, ns string, src source) bool {
	t.Helper()
	if len(from) == 0 {
		return true
	}
	for _, peer := range from {
		switch {
		case peer.IPBlock != nil:
			return true
		case peer.NamespaceSelector == nil:
			if src.namespace == ns && peer.PodSelector != nil && selectorMatches(t, peer.PodSelector, src.labels) {
				return true
			}
		default:
			if selectorMatches(t, peer.NamespaceSelector, src.nsLabels()) &&
				(peer.PodSelector == nil || selectorMatches(t, peer.PodSelector, src.labels)) {
				return true
			}
		}
	}
	return false
}

// clientPorts are what application clients reach: Redis and (sentinel
// mode) Sentinel.
func clientPorts(p servedPorts) []int32 { return []int32{p.redis, p.sentinel} }

// reach is a source and the ports it may reach on the StatefulSet's pods.
type reach struct {
	src   source
	ports func(servedPorts) []int32
}

// checkPolicies checks the policies of a build with components/networkpolicy
// against what talks to what. extra lists further sources (with the ports
// they may reach) for builds that patch the policies.
func checkPolicies(t *testing.T, b *built, mode string, extra ...reach) {
	t.Helper()
	want := []string{b.sts.Name + "-clients", b.sts.Name + "-metrics", b.sts.Name + "-peers"}
	var got []string
	for name := range b.networkPolicies {
		got = append(got, name)
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("NetworkPolicies, named after StatefulSet %s (-want +got):\n%s", b.sts.Name, diff)
	}
	for name, p := range b.networkPolicies {
		// Exactly the StatefulSet's pods: the selector it owns them by.
		if diff := cmp.Diff(*b.sts.Spec.Selector, p.Spec.PodSelector); diff != "" {
			t.Errorf("NetworkPolicy %s podSelector is not the StatefulSet's selector (-sts +policy):\n%s", name, diff)
		}
		// Egress is deliberately left open: an Egress policy would have to
		// allow the API server by its translated address, which differs
		// per cluster (components/networkpolicy/kustomization.yaml).
		if diff := cmp.Diff([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, p.Spec.PolicyTypes); diff != "" {
			t.Errorf("NetworkPolicy %s policyTypes (-want +got):\n%s", name, diff)
		}
		if p.Namespace != "" {
			t.Errorf("NetworkPolicy %s pins namespace %q: it must land beside the StatefulSet", name, p.Namespace)
		}
	}

	ports := portsOf(t, b, mode)
	const ns = "app"
	peerLabels := labels.Set{roleLabel: "replica"}
	for k, v := range b.sts.Spec.Template.Labels {
		peerLabels[k] = v
	}
	// 6380: a port nothing in the bases serves, e.g. the plaintext port
	// of a TLS migration (--plaintext-port): peers reach it, nobody else.
	const otherPort = 6380
	all := func(p servedPorts) []int32 { return []int32{p.redis, p.sentinel, p.bus, p.agent, p.exporter, otherPort} }
	none := func(servedPorts) []int32 { return nil }
	cases := []reach{
		{source{"peer", ns, peerLabels}, all},
		{source{"same labels in another namespace", "other", peerLabels}, none},
		{source{"labelled client", ns, labels.Set{clientLabel: "true"}}, clientPorts},
		{source{`client label "false"`, ns, labels.Set{clientLabel: "false"}}, none},
		{source{"labelled client in another namespace", "other", labels.Set{clientLabel: "true"}}, none},
		{source{"unlabelled pod", ns, labels.Set{"app": "web"}}, none},
		{source{"Prometheus", "monitoring", labels.Set{"app.kubernetes.io/name": "prometheus"}}, func(p servedPorts) []int32 { return []int32{p.agent, p.exporter} }},
		{source{"Prometheus labels outside monitoring", ns, labels.Set{"app.kubernetes.io/name": "prometheus"}}, none},
	}
	for _, c := range append(cases, extra...) {
		src, allowed := c.src, map[int32]bool{}
		for _, p := range c.ports(ports) {
			allowed[p] = p != 0
		}
		for _, port := range all(ports) {
			if port == 0 {
				continue
			}
			if got := admitted(t, b.networkPolicies, ns, &b.sts.Spec.Template, src, port); got != allowed[port] {
				t.Errorf("%s (namespace %s, labels %v) to port %d: admitted %v, want %v", src.name, src.namespace, src.labels, port, got, allowed[port])
			}
		}
	}

	// The cluster bus carries slot ownership and failover votes: whatever
	// rule admits it must name the StatefulSet's own pods and nothing else.
	if ports.bus == 0 {
		return
	}
	for name, p := range b.networkPolicies {
		for i, r := range p.Spec.Ingress {
			if !rulePortMatches(r.Ports, &b.sts.Spec.Template.Spec, ports.bus) {
				continue
			}
			if len(r.From) == 0 {
				t.Errorf("NetworkPolicy %s ingress %d admits the cluster bus %d from everywhere", name, i, ports.bus)
			}
			for _, peer := range r.From {
				if peer.IPBlock != nil || peer.NamespaceSelector != nil || peer.PodSelector == nil || !cmp.Equal(*peer.PodSelector, *b.sts.Spec.Selector) {
					t.Errorf("NetworkPolicy %s ingress %d admits the cluster bus %d from %+v, not only from the StatefulSet's pods", name, i, ports.bus, peer)
				}
			}
		}
	}
}

// TestNetworkPolicy: the builds with components/networkpolicy let peers
// reach each other on every port, labelled clients in the namespace reach
// only Redis and Sentinel, Prometheus only the agent, and nobody but peers
// the cluster bus; the other builds carry no policy.
func TestNetworkPolicy(t *testing.T) {
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		if !l.netpol {
			for name := range b.networkPolicies {
				t.Errorf("NetworkPolicy %s in a build without components/networkpolicy", name)
			}
			return
		}
		checkPolicies(t, b, l.mode)
	})
}

// buildWith builds a temporary kustomization (kustomization.yaml given with
// the placeholder MANIFESTS for this package's directory: kustomize takes
// only relative paths).
func buildWith(t *testing.T, kustomization string) *built {
	t.Helper()
	dir := t.TempDir()
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, here)
	if err != nil {
		t.Fatal(err)
	}
	src := []byte(fmt.Sprintf(kustomization, filepath.ToSlash(rel)))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	return kustomize(t, dir)
}

// TestNetworkPolicyFollowsTheStatefulSet: on a StatefulSet of the user's
// own (seed 002's, labelled app=redis-cluster, ports named client and
// gossip) the component takes the names and selector from it.
func TestNetworkPolicyFollowsTheStatefulSet(t *testing.T) {
	b := buildWith(t, `
resources: [%[1]s/overlays/seed002-with-agent]
components: [%[1]s/components/networkpolicy]
`)
	if got := b.sts.Spec.Selector.MatchLabels; !cmp.Equal(got, map[string]string{"app": "redis-cluster"}) {
		t.Fatalf("seed StatefulSet selector %v: the test expects the seed's app=redis-cluster", got)
	}
	checkPolicies(t, b, "cluster")
}

// TestNetworkPolicyOtherNamespaceClients: the patch manifests/README.md
// shows, which lets labelled pods of another namespace in as clients,
// builds and admits them to Redis and Sentinel only.
func TestNetworkPolicyOtherNamespaceClients(t *testing.T) {
	b := buildWith(t, `
resources: [%[1]s/overlays/production]
patches:
  - target: {kind: NetworkPolicy, name: redis-clients}
    patch: |-
      - op: add
        path: /spec/ingress/0/from/-
        value:
          namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: my-app
          podSelector:
            matchLabels:
              redis-ha-agent/client: "true"
`)
	checkPolicies(t, b, "sentinel",
		reach{source{"labelled client in my-app", "my-app", labels.Set{clientLabel: "true"}}, clientPorts},
		reach{source{"unlabelled pod in my-app", "my-app", labels.Set{"app": "web"}}, func(servedPorts) []int32 { return nil }},
	)
}
