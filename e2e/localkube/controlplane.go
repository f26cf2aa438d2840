package localkube

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Addresses of the cluster network. They are fixed because every run has its
// own network namespaces: two clusters on one machine never see each other.
const (
	clusterCIDR    = "10.244.0.0/16"
	gatewayIP      = "10.244.0.1" // the bridge in the cluster netns
	serviceCIDR    = "10.96.0.0/12"
	kubernetesSvc  = "10.96.0.1"
	dnsServiceIP   = "10.96.0.10"
	bridgeName     = "lkbr0"
	apiServerPort  = 6443
	etcdClientURL  = "http://127.0.0.1:2379"
	clusterDomain  = "cluster.local"
	saIssuer       = "https://kubernetes.default.svc.cluster.local"
	coreDNSReadyOn = "127.0.0.1:8181"
)

// Component names, also the names of their log files.
const (
	compEtcd       = "etcd"
	compAPIServer  = "kube-apiserver"
	compController = "kube-controller-manager"
	compScheduler  = "kube-scheduler"
	compCoreDNS    = "coredns"
	compKubeProxy  = "kube-proxy"
)

// controllers are the kube-controller-manager controllers the tests need.
// nodelifecycle is among them: a stopped node must turn NotReady, be
// tainted and have its pods evicted, as on any cluster.
var controllers = strings.Join([]string{
	"clusterrole-aggregation", "cronjob", "daemonset", "deployment", "disruption",
	"endpoint", "endpointslice", "endpointslicemirroring", "garbagecollector", "job",
	"namespace", "nodelifecycle", "persistentvolume-binder", "podgc", "pv-protection",
	"pvc-protection", "replicaset", "replicationcontroller", "resourcequota",
	"root-ca-cert-publisher", "serviceaccount", "serviceaccount-token", "statefulset",
	"ttl-after-finished",
}, ",")

// componentArgs returns the command line of one component. Everything it
// reads lives in the state directory.
func (c *Cluster) componentArgs(name string) (bin string, args []string, err error) {
	pk := func(f string) string { return filepath.Join(c.stateDir, "pki", f) }
	kc := func(id string) string { return componentKubeconfig(c.stateDir, id) }
	switch name {
	case compEtcd:
		return c.opts.EtcdBinary, []string{
			"--name=localkube",
			"--data-dir=" + filepath.Join(c.stateDir, "etcd"),
			"--listen-client-urls=" + etcdClientURL,
			"--advertise-client-urls=" + etcdClientURL,
			"--listen-peer-urls=http://127.0.0.1:2380",
			"--initial-advertise-peer-urls=http://127.0.0.1:2380",
			"--initial-cluster=localkube=http://127.0.0.1:2380",
			"--logger=zap", "--log-level=warn",
		}, nil
	case compAPIServer:
		return filepath.Join(c.binDir, name), []string{
			"--etcd-servers=" + etcdClientURL,
			"--bind-address=0.0.0.0",
			"--secure-port=" + strconv.Itoa(apiServerPort),
			"--advertise-address=" + gatewayIP,
			"--service-cluster-ip-range=" + serviceCIDR,
			"--tls-cert-file=" + pk("apiserver.crt"),
			"--tls-private-key-file=" + pk("apiserver.key"),
			"--client-ca-file=" + pk("ca.crt"),
			"--service-account-issuer=" + saIssuer,
			"--api-audiences=" + saIssuer,
			"--service-account-key-file=" + pk("sa.pub"),
			"--service-account-signing-key-file=" + pk("sa.key"),
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=true",
			"--cert-dir=" + filepath.Join(c.stateDir, "apiserver"),
			"--profiling=false",
			// logs, exec and port-forward go through the kubelets.
			"--kubelet-client-certificate=" + pk("apiserver-kubelet-client.crt"),
			"--kubelet-client-key=" + pk("apiserver-kubelet-client.key"),
			"--kubelet-preferred-address-types=InternalIP",
			// The node's topology labels copied onto its pods at binding,
			// for the downward API (alpha in 1.33, beta from 1.35).
			"--feature-gates=PodTopologyLabelsAdmission=true",
		}, nil
	case compController:
		return filepath.Join(c.binDir, name), []string{
			"--kubeconfig=" + kc("controller-manager"),
			"--bind-address=127.0.0.1",
			"--leader-elect=false",
			"--use-service-account-credentials=true",
			"--service-account-private-key-file=" + pk("sa.key"),
			"--root-ca-file=" + pk("ca.crt"),
			"--controllers=" + controllers,
			"--profiling=false",
		}, nil
	case compScheduler:
		return filepath.Join(c.binDir, name), []string{
			"--kubeconfig=" + kc("scheduler"),
			"--bind-address=127.0.0.1",
			"--leader-elect=false",
			"--profiling=false",
		}, nil
	case compCoreDNS:
		corefile := filepath.Join(c.stateDir, "Corefile")
		if err := os.WriteFile(corefile, []byte(c.corefile()), 0o644); err != nil {
			return "", nil, fmt.Errorf("write %s: %w", corefile, err)
		}
		return filepath.Join(c.binDir, name), []string{"-conf", corefile, "-dns.port", "53"}, nil
	case compKubeProxy:
		return filepath.Join(c.binDir, name), []string{
			"--kubeconfig=" + kc("kube-proxy"),
			"--proxy-mode=iptables",
			"--cluster-cidr=" + clusterCIDR,
			// kube-proxy waits up to 30s for its own Node object; it plays
			// the first node, which that node's kubelet registers.
			"--hostname-override=" + c.opts.Nodes[0],
			"--bind-address=" + gatewayIP,
			// The conntrack table size is a host-wide setting; leave it alone.
			"--conntrack-max-per-core=0",
			"--conntrack-tcp-timeout-established=0",
			"--conntrack-tcp-timeout-close-wait=0",
			// Pods come and go every few seconds in fault tests; don't batch.
			"--iptables-min-sync-period=250ms",
			"--healthz-bind-address=127.0.0.1:10256",
			"--metrics-bind-address=127.0.0.1:10249",
		}, nil
	}
	return "", nil, fmt.Errorf("unknown component %q", name)
}

// corefile serves cluster.local from the API, with `pods verified` so pod A
// records exist only for real pods, and without a cache so a pod that comes
// back with a new IP is visible at once. There is no upstream: the cluster
// network has no way out, by design.
func (c *Cluster) corefile() string {
	return fmt.Sprintf(`.:53 {
    errors
    health 127.0.0.1:8080
    ready %s
    kubernetes %s in-addr.arpa ip6.arpa {
        kubeconfig %s
        pods verified
        ttl 5
        fallthrough in-addr.arpa ip6.arpa
    }
}
`, coreDNSReadyOn, clusterDomain, componentKubeconfig(c.stateDir, "coredns"))
}
