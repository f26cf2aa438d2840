package localkube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/images"
)

// Cluster is a running local cluster. All methods are safe for concurrent use.
type Cluster struct {
	// RunID names every object of this run: netns lk-<RunID>-*.
	RunID string
	// StateDir holds this run's PKI, etcd data, logs, nodes and volumes.
	StateDir string
	// Kubeconfig is the host's kubeconfig (admin, via 127.0.0.1).
	Kubeconfig string
	// RESTConfig and Clientset are built from Kubeconfig.
	RESTConfig *rest.Config
	Clientset  kubernetes.Interface
	// Resolver asks CoreDNS from inside the cluster network.
	Resolver *net.Resolver
	// Network is the cluster network namespace and the bridge in it that
	// every node's CNI plugin attaches pods to.
	Network *Network
	// Timings are the durations of Up's phases, in order.
	Timings []Phase

	opts     Options
	stateDir string
	binDir   string
	log      zerolog.Logger
	spawn    *spawner
	fwd      *forwarder
	ext      *externalDialer // E2E_KUBECONFIG clusters only

	mu        sync.Mutex
	procs     map[string]*process
	netFaults map[string]netFault // by "<ns>/<pod> <fault>"

	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup
	bgErrs   chan error

	// The nodes, and the images built during Up and loaded into every
	// node, and the aliases tagged there.
	nodes        []*node
	images       []images.Image
	imageAliases map[string]string
	imagesDone   chan struct{}
	imagesErr    error

	downOnce sync.Once
	downErr  error
}

// Phase is one timed step of Up.
type Phase struct {
	Name     string
	Duration time.Duration
}

// Up starts a cluster and returns when the API server is ready, the
// controllers, CoreDNS and kube-proxy run, and every node is Ready. On error
// everything started so far is torn down.
func Up(ctx context.Context, opts Options) (*Cluster, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, StateDir: opts.StateDir, stateDir: opts.StateDir, log: opts.Log, procs: map[string]*process{}, bgErrs: make(chan error, 8)}
	if err := c.up(ctx); err != nil {
		if derr := c.Down(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, fmt.Errorf("teardown after failed up: %w", derr))
		}
		return nil, err
	}
	return c, nil
}

func (c *Cluster) phase(name string, start time.Time) {
	d := time.Since(start)
	c.Timings = append(c.Timings, Phase{Name: name, Duration: d})
	c.log.Info().Str("phase", name).Dur("took", d).Msg("phase done")
	if c.opts.OnPhase != nil {
		c.opts.OnPhase(Phase{Name: name, Duration: d})
	}
}

func (c *Cluster) up(ctx context.Context) error {
	start := time.Now()
	if r, ok := liveRunFor(c.stateDir); ok {
		return fmt.Errorf("state dir %s is in use by run %s (pid %d): run `localkube down` or choose another state dir", c.stateDir, r.RunID, r.PID)
	}
	if err := cleanupStale(ctx, c.log); err != nil {
		c.log.Warn().Err(err).Msg("cleaning up dead runs (continuing)")
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	c.RunID = hex.EncodeToString(id)
	c.log = c.log.With().Str("run", c.RunID).Logger()
	if err := c.prepareStateDir(); err != nil {
		return err
	}
	if err := writeRunRecord(c.RunID, c.stateDir); err != nil {
		return fmt.Errorf("write run record: %w", err)
	}
	c.phase("cleanup", start)

	t := time.Now()
	if err := c.build(ctx); err != nil {
		return err
	}
	c.phase("build control plane", t)
	c.buildImages(ctx)

	t = time.Now()
	c.spawn = newSpawner()
	network, err := createClusterNetwork(ctx, c.RunID)
	c.Network = network
	if err != nil {
		return err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(gatewayIP), net.ParseIP(kubernetesSvc)}
	names := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + clusterDomain}
	p, err := newPKI(filepath.Join(c.stateDir, "pki"), ips, names, c.opts.Nodes)
	if err != nil {
		return err
	}
	inside := fmt.Sprintf("https://127.0.0.1:%d", apiServerPort)
	for _, id := range clientIdentities(c.opts.Nodes) {
		if err := writeKubeconfig(componentKubeconfig(c.stateDir, id.file), inside, p, id.file); err != nil {
			return err
		}
	}
	c.fwd, err = newForwarder("127.0.0.1:0", func(ctx context.Context) (net.Conn, error) {
		return c.Network.cluster.dial(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", apiServerPort))
	}, c.log.With().Str("component", "forwarder").Logger())
	if err != nil {
		return fmt.Errorf("listen for the API forwarder on 127.0.0.1: %w", err)
	}
	c.Kubeconfig = filepath.Join(c.stateDir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, "https://"+c.fwd.addr(), p, "admin"); err != nil {
		return err
	}
	if err := c.clients(); err != nil {
		return err
	}
	c.Resolver = c.newResolver()
	c.phase("network+pki", t)

	t = time.Now()
	if err := c.startComponent(compEtcd); err != nil {
		return err
	}
	if err := c.waitEtcd(ctx); err != nil {
		return err
	}
	c.phase("etcd", t)

	t = time.Now()
	if err := c.StartAPIServer(ctx); err != nil {
		return err
	}
	c.phase("apiserver", t)

	t = time.Now()
	if err := bootstrap(ctx, c.Clientset); err != nil {
		return err
	}
	for _, name := range []string{compController, compScheduler, compCoreDNS, compKubeProxy} {
		if err := c.startComponent(name); err != nil {
			return err
		}
	}
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.bgCancel = cancel
	prov := &provisioner{cs: c.Clientset, stateDir: c.stateDir, log: c.log.With().Str("component", "provisioner").Logger()}
	c.background("provisioner", func() error { return prov.run(bgCtx) })
	// kube-proxy waits for its Node (node-a) before programming rules, so
	// the nodes start before waiting for DNS through kube-proxy.
	t2 := time.Now()
	if err := c.waitImages(ctx); err != nil {
		return err
	}
	c.phase("images (overlapped)", t2)
	if err := c.startNodes(ctx); err != nil {
		return err
	}
	if err := c.waitDNS(ctx); err != nil {
		return err
	}
	c.phase("controllers+dns+proxy", t)

	t = time.Now()
	if err := c.waitNodesReady(ctx); err != nil {
		return err
	}
	c.phase("nodes", t)
	c.log.Info().Dur("total", time.Since(start)).Str("kubeconfig", c.Kubeconfig).Msg("cluster up")
	return nil
}

func (c *Cluster) clients() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load %s: %w", c.Kubeconfig, err)
	}
	// Tests create and watch many objects at once; client-side throttling
	// would only add latency to the measurements.
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c.RESTConfig, c.Clientset = cfg, cs
	return nil
}

// VolumeDir is the directory behind a claim of localkube's StorageClasses
// (see provisioner), where a test can read or damage what a pod wrote.
func (c *Cluster) VolumeDir(ns, claim string) string { return volumeDir(c.stateDir, ns, claim) }

func volumeDir(stateDir, ns, claim string) string {
	return filepath.Join(stateDir, "volumes", ns, claim)
}

// PodLogDirs is a glob of the directories where the nodes of the cluster
// in stateDir keep their pods' container logs, a <ns>_<pod>_<uid>
// directory per pod (the files `kubectl logs` reads), for failure messages.
func PodLogDirs(stateDir string) string { return filepath.Join(nodeDir(stateDir, "*"), "pod-logs") }

func nodeDir(stateDir, name string) string { return filepath.Join(stateDir, "nodes", name) }

// background runs fn until Down; an early error is reported by Err.
func (c *Cluster) background(name string, fn func() error) {
	c.bgWG.Add(1)
	go func() {
		defer c.bgWG.Done()
		if err := fn(); err != nil {
			c.log.Error().Err(err).Str("component", name).Msg("stopped")
			select {
			case c.bgErrs <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	}()
}

func (c *Cluster) startComponent(name string) error {
	bin, args, err := c.componentArgs(name)
	if err != nil {
		return err
	}
	p, err := c.spawn.start(name, c.Network.cluster, filepath.Join(c.stateDir, "logs", name+".log"), bin, args...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
	return nil
}

func (c *Cluster) stopComponent(name string, grace time.Duration) error {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.stop(grace)
}

// componentDied returns an error naming the component and its log if it has
// exited; waits use it to fail fast instead of timing out.
func (c *Cluster) componentDied(name string) error {
	c.mu.Lock()
	p := c.procs[name]
	c.mu.Unlock()
	if p == nil || !p.exited() {
		return nil
	}
	return fmt.Errorf("%s exited (%v); see %s", name, p.exitError(), filepath.Join(c.stateDir, "logs", name+".log"))
}

// Down stops everything Up started, in reverse order, and removes the
// network namespaces and the run record. Safe to call more than once.
func (c *Cluster) Down(ctx context.Context) error {
	c.downOnce.Do(func() { c.downErr = c.down(ctx) })
	return c.downErr
}

func (c *Cluster) down(ctx context.Context) error {
	if c.External() {
		c.ext.close() // the cluster itself is not ours to stop
		return nil
	}
	start := time.Now()
	var errs []error
	if c.imagesDone != nil {
		<-c.imagesDone
	}
	if len(c.nodes) > 0 {
		if err := c.stopNodes(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if c.bgCancel != nil {
		c.bgCancel()
	}
	c.bgWG.Wait()
	if c.fwd != nil {
		c.fwd.close()
	}
	for _, name := range []string{compKubeProxy, compCoreDNS, compScheduler, compController, compAPIServer, compEtcd} {
		if err := c.stopComponent(name, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if c.spawn != nil {
		c.spawn.close()
	}
	if c.Network != nil {
		if err := c.Network.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if c.RunID != "" {
		if err := removeRun(ctx, c.RunID, c.stateDir); err != nil {
			errs = append(errs, err)
		}
	}
	c.log.Info().Dur("took", time.Since(start)).Msg("cluster down")
	return errors.Join(errs...)
}
