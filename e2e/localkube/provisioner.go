package localkube

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// provisioner is the external provisioner for localkube's StorageClasses:
// for every pending claim of such a class it creates a PersistentVolume
// pre-bound to the claim, and the controller manager's PV binder completes the
// binding, exactly as with a CSI provisioner. The volume is a hostPath
// directory per claim under the state dir, which outlives the pod; every
// node's kubelet can mount it, as the nodes share this machine's
// filesystem.
type provisioner struct {
	cs       kubernetes.Interface
	stateDir string // the claims' directories are below it (volumeDir)
	log      zerolog.Logger
}

func (p *provisioner) run(ctx context.Context) error {
	f := informers.NewSharedInformerFactory(p.cs, 30*time.Second)
	claims := f.Core().V1().PersistentVolumeClaims()
	classes := f.Storage().V1().StorageClasses()
	queue := make(chan *corev1.PersistentVolumeClaim, 256)
	enqueue := func(obj any) {
		if c, ok := obj.(*corev1.PersistentVolumeClaim); ok && c.Spec.VolumeName == "" && c.DeletionTimestamp == nil {
			select {
			case queue <- c:
			case <-ctx.Done():
			}
		}
	}
	if _, err := claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	classLister := classes.Lister()
	classes.Informer()
	f.Start(ctx.Done())
	defer f.Shutdown()
	f.WaitForCacheSync(ctx.Done())
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-queue:
			name := ptrString(c.Spec.StorageClassName)
			sc, err := classLister.Get(name)
			if err != nil || sc.Provisioner != Provisioner {
				continue
			}
			// Delayed binding: provision once the scheduler picked a node.
			if sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer &&
				c.Annotations[selectedNodeAnnotation] == "" {
				continue
			}
			if err := p.provision(ctx, c); err != nil {
				p.log.Error().Err(err).Str("claim", c.Namespace+"/"+c.Name).Msg("provision")
			}
		}
	}
}

func (p *provisioner) provision(ctx context.Context, c *corev1.PersistentVolumeClaim) error {
	size, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return fmt.Errorf("claim %s/%s has no storage request", c.Namespace, c.Name)
	}
	// Like rancher's local-path provisioner: the directory exists before
	// any pod mounts it, open to every uid, because a kubelet applies a
	// pod's fsGroup to a hostPath volume's ownership never (Redis runs as
	// 999 here, not root).
	dir := volumeDir(p.stateDir, c.Namespace, c.Name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("create volume directory for claim %s/%s: %w", c.Namespace, c.Name, err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return fmt.Errorf("open volume directory %s: %w", dir, err)
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "pvc-" + string(c.UID),
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": Provisioner},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   c.Spec.AccessModes,
			VolumeMode:                    c.Spec.VolumeMode,
			StorageClassName:              ptrString(c.Spec.StorageClassName),
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef: &corev1.ObjectReference{
				APIVersion: "v1", Kind: "PersistentVolumeClaim",
				Namespace: c.Namespace, Name: c.Name, UID: c.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir},
			},
		},
	}
	_, err := p.cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create PersistentVolume %s for claim %s/%s: %w", pv.Name, c.Namespace, c.Name, err)
	}
	return nil
}

// selectedNodeAnnotation is set on a claim by the scheduler when it wants
// the volume of a WaitForFirstConsumer claim provisioned.
const selectedNodeAnnotation = "volume.kubernetes.io/selected-node"

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
