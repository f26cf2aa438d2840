package localkube

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Provisioner is the provisioner name of the StorageClasses localkube creates;
// its own binder (provisioner.go) satisfies claims of these classes.
const Provisioner = "localkube/hostpath"

// storageClasses are the default class and "hostpath", the class the seed
// manifests name. WaitForFirstConsumer, like most real provisioners: with
// Immediate binding the scheduler rejects a StatefulSet pod whose claim the
// StatefulSet controller created a moment earlier and, in v1.34, does not
// retry it when the claim becomes Bound (the pod sat Pending for minutes).
// With delayed binding the scheduler itself asks for the volume and waits
// for it in PreBind.
func storageClasses() []*storagev1.StorageClass {
	mode := storagev1.VolumeBindingWaitForFirstConsumer
	reclaim := corev1.PersistentVolumeReclaimRetain
	sc := func(name string, isDefault bool) *storagev1.StorageClass {
		s := &storagev1.StorageClass{
			ObjectMeta:        metav1.ObjectMeta{Name: name},
			Provisioner:       Provisioner,
			VolumeBindingMode: &mode,
			ReclaimPolicy:     &reclaim,
		}
		if isDefault {
			s.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
		}
		return s
	}
	return []*storagev1.StorageClass{sc("standard", true), sc("hostpath", false)}
}

// bootstrap creates what a kubeadm cluster has before any workload: the
// storage classes and the kube-dns Service. CoreDNS runs in the cluster netns
// rather than in a pod, so kube-dns has no selector and localkube writes its
// EndpointSlice by hand, pointing at the gateway address CoreDNS listens on.
func bootstrap(ctx context.Context, cs kubernetes.Interface) error {
	// The default namespace appears shortly after /readyz; objects created
	// before it would be rejected by NamespaceLifecycle.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("namespace default did not appear within a minute of /readyz: %w", err)
	}
	for _, sc := range storageClasses() {
		if _, err := cs.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create StorageClass %s: %w", sc.Name, err)
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system", Labels: map[string]string{"k8s-app": "kube-dns"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: dnsServiceIP,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
			},
		},
	}
	if _, err := cs.CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Service kube-system/kube-dns: %w", err)
	}
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	eps := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "kube-dns-localkube", Namespace: "kube-system",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: "kube-dns",
				discoveryv1.LabelManagedBy:   "localkube",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{gatewayIP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Port: ptr.To[int32](53), Protocol: &udp},
			{Name: ptr.To("dns-tcp"), Port: ptr.To[int32](53), Protocol: &tcp},
		},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("kube-system").Create(ctx, eps, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create EndpointSlice kube-system/kube-dns-localkube: %w", err)
	}
	return nil
}
