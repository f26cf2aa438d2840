package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Kubelet is the node agent for Config.Nodes.
type Kubelet struct {
	cfg     Config
	log     zerolog.Logger
	tools   tools
	nodes   map[string]bool
	objects objectSource
	paths   *hostPaths

	recorders map[string]record.EventRecorder // by node

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	byName  map[string]*podWorker // ns/name → newest worker
	wg      sync.WaitGroup
	running bool
}

// New checks cfg and returns a Kubelet; Run starts it.
func New(cfg Config) (*Kubelet, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	t, err := findTools()
	if err != nil {
		return nil, err
	}
	k := &Kubelet{
		cfg:     cfg,
		log:     cfg.Log.With().Str("component", "kubelet").Logger(),
		tools:   t,
		nodes:   map[string]bool{},
		workers: map[types.UID]*podWorker{},
		byName:  map[string]*podWorker{},
	}
	for _, n := range cfg.Nodes {
		k.nodes[n] = true
	}
	k.paths = &hostPaths{record: filepath.Join(cfg.RootDir, "host-paths.txt")}
	return k, nil
}

// listerSource reads ConfigMaps and Secrets from informer caches.
type listerSource struct {
	cms     corelisters.ConfigMapLister
	secrets corelisters.SecretLister
}

func (s listerSource) ConfigMap(ns, name string) (*v1.ConfigMap, error) {
	return s.cms.ConfigMaps(ns).Get(name)
}

func (s listerSource) Secret(ns, name string) (*v1.Secret, error) {
	return s.secrets.Secrets(ns).Get(name)
}

// Run registers the nodes, runs the pods bound to them until ctx ends, then
// stops every container (SIGTERM, SIGKILL after ShutdownGrace), tears down
// every pod network and removes the mount points it created on the host.
func (k *Kubelet) Run(ctx context.Context) error {
	k.mu.Lock()
	if k.running {
		k.mu.Unlock()
		return errors.New("kubelet: Run called twice")
	}
	k.running = true
	k.mu.Unlock()
	if err := os.MkdirAll(filepath.Join(k.cfg.RootDir, "pods"), 0o755); err != nil {
		return fmt.Errorf("kubelet: create root dir: %w", err)
	}
	if err := k.paths.cleanStale(); err != nil {
		k.log.Warn().Err(err).Msg("removing mount points left by a previous run")
	}
	if err := k.registerNodes(ctx); err != nil {
		return err
	}

	bc := record.NewBroadcaster(record.WithContext(ctx))
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.cfg.Client.CoreV1().Events("")})
	defer bc.Shutdown()
	k.recorders = map[string]record.EventRecorder{}
	for n := range k.nodes {
		k.recorders[n] = bc.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: n})
	}

	objs := informers.NewSharedInformerFactory(k.cfg.Client, 10*time.Minute)
	cms := objs.Core().V1().ConfigMaps()
	secrets := objs.Core().V1().Secrets()
	k.objects = listerSource{cms.Lister(), secrets.Lister()}
	poke := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { k.pokeAll() },
		UpdateFunc: func(any, any) { k.pokeAll() },
	}
	if _, err := cms.Informer().AddEventHandler(poke); err != nil {
		return err
	}
	if _, err := secrets.Informer().AddEventHandler(poke); err != nil {
		return err
	}
	pods := informers.NewSharedInformerFactoryWithOptions(k.cfg.Client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName!=" }))
	podInf := pods.Core().V1().Pods().Informer()
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { k.podChanged(ctx, o) },
		UpdateFunc: func(_, o any) { k.podChanged(ctx, o) },
		DeleteFunc: func(o any) { k.podGone(o) },
	}); err != nil {
		return err
	}
	objs.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), cms.Informer().HasSynced, secrets.Informer().HasSynced) {
		k.shutdown()
		return ctx.Err()
	}
	pods.Start(ctx.Done())

	var hb sync.WaitGroup
	for n := range k.nodes {
		hb.Add(1)
		go func() { defer hb.Done(); k.heartbeat(ctx, n) }()
	}
	k.log.Info().Strs("nodes", k.cfg.Nodes).Msg("node agent running")
	<-ctx.Done()
	objs.Shutdown()
	pods.Shutdown()
	k.shutdown()
	hb.Wait()
	return nil
}

// shutdown waits for every pod worker (they stop on ctx) and removes the
// host mount points.
func (k *Kubelet) shutdown() {
	k.wg.Wait()
	if err := k.paths.removeAll(); err != nil {
		k.log.Warn().Err(err).Msg("removing mount points created on the host")
	}
}

func (k *Kubelet) pokeAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, w := range k.workers {
		w.poke()
	}
}

func (k *Kubelet) podChanged(ctx context.Context, o any) {
	pod, ok := o.(*v1.Pod)
	if !ok || !k.nodes[pod.Spec.NodeName] || ctx.Err() != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if w := k.workers[pod.UID]; w != nil {
		w.update(pod)
		return
	}
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
		if pod.DeletionTimestamp != nil {
			// Nothing runs for it here: finish the deletion like the
			// status manager does for terminal pods.
			go k.deletePod(context.WithoutCancel(ctx), pod)
		}
		return
	}
	w := newPodWorker(k, pod)
	k.workers[pod.UID] = w
	k.byName[pod.Namespace+"/"+pod.Name] = w
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		w.run(ctx)
		k.mu.Lock()
		delete(k.workers, pod.UID)
		if k.byName[pod.Namespace+"/"+pod.Name] == w {
			delete(k.byName, pod.Namespace+"/"+pod.Name)
		}
		k.mu.Unlock()
	}()
}

func (k *Kubelet) podGone(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	pod, ok := o.(*v1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if w := k.workers[pod.UID]; w != nil {
		w.markGone()
	}
}

// deletePod removes the pod object once nothing of it runs (grace period 0,
// preconditioned on the UID so a recreated pod of the same name is safe).
func (k *Kubelet) deletePod(ctx context.Context, pod *v1.Pod) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	zero := int64(0)
	err := k.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		k.log.Warn().Err(err).Str("pod", pod.Namespace+"/"+pod.Name).Msg("final pod deletion failed")
	}
}

func (k *Kubelet) worker(ns, pod string) (*podWorker, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	w := k.byName[ns+"/"+pod]
	if w == nil {
		return nil, fmt.Errorf("pod %s/%s is not running on nodes %v of this node agent", ns, pod, k.cfg.Nodes)
	}
	return w, nil
}

func (k *Kubelet) event(pod *v1.Pod, typ, reason, format string, args ...any) {
	if r := k.recorders[pod.Spec.NodeName]; r != nil {
		r.Eventf(pod, typ, reason, format, args...)
	}
}
