package localkube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// ErrNeedsLocalNodes is returned by a fault that only the local nodes can
// cause (a process signal, the cgroup freezer, iptables in a pod's network
// namespace, stopping the API server or a node) on an E2E_KUBECONFIG cluster.
var ErrNeedsLocalNodes = errors.New("needs the local nodes (localkube's own cluster), not an E2E_KUBECONFIG cluster")

// Attach connects to an existing cluster through a kubeconfig, for the
// scenario tests that need only Kubernetes APIs. Nothing is started and
// Down leaves the cluster alone. Tests reach pods through the API server's
// port-forward, and names through the cluster's own DNS (CoreDNS reached
// the same way), so the host needs no route into the pod network.
func Attach(ctx context.Context, kubeconfig string, log zerolog.Logger) (*Cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s (E2E_KUBECONFIG): %w", kubeconfig, err)
	}
	// Every dial asks the API (names, endpoints, the pod) within a client's
	// dial timeout (500 ms in the tests): client-go's default of 5
	// requests per second would make dials wait and fail.
	cfg.QPS, cfg.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s (E2E_KUBECONFIG): %w", kubeconfig, err)
	}
	if _, err := cs.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("API server of kubeconfig %s (E2E_KUBECONFIG) does not answer: %w", kubeconfig, err)
	}
	c := &Cluster{RunID: "external", Kubeconfig: kubeconfig, RESTConfig: cfg, Clientset: cs, log: log,
		opts: Options{Log: log}, procs: map[string]*process{}}
	c.ext = &externalDialer{c: c, fwds: map[string]*forward{}}
	c.Resolver = &net.Resolver{PreferGo: true, Dial: c.ext.dialDNS}
	return c, nil
}

// External tells whether the cluster is an E2E_KUBECONFIG cluster.
func (c *Cluster) External() bool { return c.ext != nil }

// notRun lists the tests an E2E_KUBECONFIG cluster could not run, with the
// fault each needed; RunTests prints it.
var notRun struct {
	sync.Mutex
	list []string
}

// NeedsLocalNodes marks a test that causes a fault only the local nodes can
// cause: on an E2E_KUBECONFIG cluster the test stops here as not run,
// named with its fault in the run's summary (never counted as passed).
func (c *Cluster) NeedsLocalNodes(t testing.TB, fault string) {
	t.Helper()
	if !c.External() {
		return
	}
	notRun.Lock()
	notRun.list = append(notRun.list, fmt.Sprintf("%s (%s)", t.Name(), fault))
	notRun.Unlock()
	t.Skipf("NOT RUN on the E2E_KUBECONFIG cluster: %s %v", fault, ErrNeedsLocalNodes)
}

func printNotRun(w io.Writer) {
	notRun.Lock()
	defer notRun.Unlock()
	if len(notRun.list) == 0 {
		return
	}
	sort.Strings(notRun.list)
	fmt.Fprintf(w, "localkube: %d tests NOT RUN on the E2E_KUBECONFIG cluster (their faults need the local nodes):\n", len(notRun.list))
	for _, s := range notRun.list {
		fmt.Fprintf(w, "  %s\n", s)
	}
}

// externalDialer opens connections into an external cluster through
// port-forwards, one local listener per pod and port, kept while it works.
type externalDialer struct {
	c    *Cluster
	mu   sync.Mutex
	fwds map[string]*forward // by pod UID and port
}

type forward struct {
	local string // 127.0.0.1:port
	stop  chan struct{}
	done  chan struct{}
}

// dial resolves addr the way a pod would (pod IP, ClusterIP, or a cluster
// DNS name), picks the pod behind it and connects through a port-forward.
func (d *externalDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %q in the cluster: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("dial %q in the cluster: port: %w", addr, err)
	}
	ip := host
	if _, err := netip.ParseAddr(host); err != nil {
		ips, err := d.lookup(ctx, host)
		if err != nil || len(ips) == 0 {
			return nil, fmt.Errorf("resolve %q in the cluster: %w", host, err)
		}
		ip = ips[0]
	}
	pod, podPort, err := d.target(ctx, ip, port)
	if err != nil {
		return nil, fmt.Errorf("dial %s in the cluster: %w", addr, err)
	}
	local, err := d.forwardTo(pod, podPort)
	if err != nil {
		return nil, fmt.Errorf("dial %s in the cluster: %w", addr, err)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", local)
}

// lookup resolves a cluster DNS name the way CoreDNS' kubernetes plugin
// answers it, from the API: <svc>.<ns>.svc.<domain> is the Service's
// ClusterIP (a headless Service's ready endpoints), and
// <hostname>.<svc>.<ns>.svc.<domain> the endpoint (pod) of that hostname.
// Other names go to the cluster's DNS.
func (d *externalDialer) lookup(ctx context.Context, host string) ([]string, error) {
	name, _, ok := strings.Cut(strings.TrimSuffix(host, "."), ".svc")
	labels := strings.Split(name, ".")
	if !ok || len(labels) < 2 || len(labels) > 3 {
		return d.c.Resolver.LookupHost(ctx, host)
	}
	ns, svcName := labels[len(labels)-1], labels[len(labels)-2]
	svc, err := d.c.Clientset.CoreV1().Services(ns).Get(ctx, svcName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if len(labels) == 2 && svc.Spec.ClusterIP != corev1.ClusterIPNone && svc.Spec.ClusterIP != "" {
		return []string{svc.Spec.ClusterIP}, nil
	}
	slices, err := d.c.Clientset.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svcName})
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, sl := range slices.Items {
		for _, ep := range sl.Endpoints {
			match := len(labels) == 2 || ep.Hostname != nil && *ep.Hostname == labels[0]
			// A headless Service publishes not-ready pods too when it
			// says so (publishNotReadyAddresses), as CoreDNS would.
			ready := svc.Spec.PublishNotReadyAddresses || ep.Conditions.Ready == nil || *ep.Conditions.Ready
			if match && ready {
				ips = append(ips, ep.Addresses...)
			}
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("no endpoint of Service %s/%s answers to %s", ns, svcName, host)
	}
	return ips, nil
}

// target maps an IP and port to a running pod and its port: a pod IP
// directly, a ClusterIP through its Service's ready endpoints.
func (d *externalDialer) target(ctx context.Context, ip string, port int) (*corev1.Pod, int, error) {
	cs := d.c.Clientset
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.podIP=" + ip})
	if err != nil {
		return nil, 0, err
	}
	for i := range pods.Items {
		if p := &pods.Items[i]; p.Status.Phase == corev1.PodRunning {
			return p, port, nil
		}
	}
	svcs, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{FieldSelector: "spec.clusterIP=" + ip})
	if err != nil {
		return nil, 0, err
	}
	if len(svcs.Items) == 0 {
		return nil, 0, fmt.Errorf("no running pod and no Service has the IP %s", ip)
	}
	svc := &svcs.Items[0]
	var target intstr.IntOrString
	var portName string
	for _, sp := range svc.Spec.Ports {
		if int(sp.Port) == port {
			target, portName = sp.TargetPort, sp.Name
		}
	}
	if portName == "" && target.IntValue() == 0 && target.StrVal == "" {
		return nil, 0, fmt.Errorf("the Service %s/%s has no port %d", svc.Namespace, svc.Name, port)
	}
	return d.endpoint(ctx, svc, portName, target, port)
}

// endpoint picks a ready endpoint of a Service, as kube-proxy would.
func (d *externalDialer) endpoint(ctx context.Context, svc *corev1.Service, portName string, target intstr.IntOrString, port int) (*corev1.Pod, int, error) {
	cs := d.c.Clientset
	slices, err := cs.DiscoveryV1().EndpointSlices(svc.Namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name})
	if err != nil {
		return nil, 0, err
	}
	for _, s := range slices.Items {
		podPort := port
		for _, p := range s.Ports {
			if p.Port != nil && (p.Name == nil && portName == "" || p.Name != nil && *p.Name == portName) {
				podPort = int(*p.Port)
			}
		}
		if target.Type == intstr.Int && target.IntValue() > 0 && len(s.Ports) == 0 {
			podPort = target.IntValue()
		}
		for _, ep := range s.Endpoints {
			if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" || ep.Conditions.Ready == nil || !*ep.Conditions.Ready {
				continue
			}
			p, err := cs.CoreV1().Pods(ep.TargetRef.Namespace).Get(ctx, ep.TargetRef.Name, metav1.GetOptions{})
			if err == nil && p.Status.Phase == corev1.PodRunning {
				return p, podPort, nil
			}
		}
	}
	return nil, 0, fmt.Errorf("the Service %s/%s has no ready endpoint", svc.Namespace, svc.Name)
}

// forwardTo returns the local address of a port-forward to the pod's port,
// starting one when none works.
func (d *externalDialer) forwardTo(pod *corev1.Pod, port int) (string, error) {
	key := fmt.Sprintf("%s/%d", pod.UID, port)
	d.mu.Lock()
	defer d.mu.Unlock()
	if f, ok := d.fwds[key]; ok {
		select {
		case <-f.done:
			delete(d.fwds, key)
		default:
			return f.local, nil
		}
	}
	u := d.c.Clientset.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	rt, upgrader, err := spdy.RoundTripperFor(d.c.RESTConfig)
	if err != nil {
		return "", err
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	f := &forward{stop: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, f.stop, ready, io.Discard, io.Discard)
	if err != nil {
		return "", fmt.Errorf("port-forward to %s/%s:%d: %w", pod.Namespace, pod.Name, port, err)
	}
	errc := make(chan error, 1)
	go func() {
		defer close(f.done)
		errc <- pf.ForwardPorts()
	}()
	select {
	case <-ready:
	case err := <-errc:
		return "", fmt.Errorf("port-forward to %s/%s:%d: %w", pod.Namespace, pod.Name, port, err)
	case <-time.After(30 * time.Second):
		close(f.stop)
		return "", fmt.Errorf("port-forward to %s/%s:%d: not ready after 30s", pod.Namespace, pod.Name, port)
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		close(f.stop)
		return "", fmt.Errorf("port-forward to %s/%s:%d: no local port: %v", pod.Namespace, pod.Name, port, err)
	}
	f.local = net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local)))
	d.fwds[key] = f
	return f.local, nil
}

// dialDNS reaches the cluster's DNS (the kube-dns Service's pods) through a
// port-forward: a stream connection, so Go's resolver speaks DNS over TCP.
func (d *externalDialer) dialDNS(ctx context.Context, _, _ string) (net.Conn, error) {
	svc, err := d.c.Clientset.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("cluster DNS: Service kube-system/kube-dns: %w", err)
	}
	var target intstr.IntOrString
	var portName string
	for _, sp := range svc.Spec.Ports {
		if sp.Port == 53 && sp.Protocol == corev1.ProtocolTCP {
			target, portName = sp.TargetPort, sp.Name
		}
	}
	pod, port, err := d.endpoint(ctx, svc, portName, target, 53)
	if err != nil {
		return nil, fmt.Errorf("cluster DNS: %w", err)
	}
	local, err := d.forwardTo(pod, port)
	if err != nil {
		return nil, fmt.Errorf("cluster DNS: %w", err)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", local)
}

// close stops every port-forward.
func (d *externalDialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, f := range d.fwds {
		close(f.stop)
		<-f.done
		delete(d.fwds, k)
	}
}

// externalKubeconfig is E2E_KUBECONFIG, or "".
func externalKubeconfig() string { return os.Getenv("E2E_KUBECONFIG") }
