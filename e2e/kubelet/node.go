package kubelet

import (
	"context"
	"fmt"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

const (
	leaseDuration   = 40 * time.Second
	leaseRenew      = 10 * time.Second
	nodeStatusEvery = 30 * time.Second
	kubeletVersion  = "v1.34.4"
)

// nodeAllocatable is what every node reports; the scheduler only needs it
// to be large enough for a test's pods.
func nodeAllocatable() v1.ResourceList {
	return v1.ResourceList{
		v1.ResourceCPU:              resource.MustParse("8"),
		v1.ResourceMemory:           resource.MustParse("16Gi"),
		v1.ResourcePods:             resource.MustParse("110"),
		v1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
}

func (k *Kubelet) nodeStatus(now metav1.Time) v1.NodeStatus {
	c := func(t v1.NodeConditionType, s v1.ConditionStatus, reason, msg string) v1.NodeCondition {
		return v1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return v1.NodeStatus{
		Capacity:    nodeAllocatable(),
		Allocatable: nodeAllocatable(),
		Phase:       v1.NodeRunning,
		Conditions: []v1.NodeCondition{
			c(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			c(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			c(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			c(v1.NodeReady, v1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		DaemonEndpoints: v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: 10250}},
		NodeInfo: v1.NodeSystemInfo{
			KubeletVersion:  kubeletVersion,
			OperatingSystem: "linux", Architecture: "amd64",
			ContainerRuntimeVersion: "localkube://1", OSImage: "localkube host processes",
		},
	}
}

// mergeNodeConditions keeps transition times of unchanged conditions.
func mergeNodeConditions(prev, next []v1.NodeCondition) []v1.NodeCondition {
	for i := range next {
		for _, p := range prev {
			if p.Type == next[i].Type && p.Status == next[i].Status {
				next[i].LastTransitionTime = p.LastTransitionTime
			}
		}
	}
	return next
}

// registerNodes creates (or refreshes) every Node object with Ready status.
func (k *Kubelet) registerNodes(ctx context.Context) error {
	for _, name := range k.cfg.Nodes {
		if err := k.registerNode(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (k *Kubelet) registerNode(ctx context.Context, name string) error {
	labels := map[string]string{
		"kubernetes.io/hostname": name,
		"kubernetes.io/os":       "linux",
		"kubernetes.io/arch":     "amd64",
	}
	for lk, lv := range k.cfg.NodeLabels[name] {
		labels[lk] = lv
	}
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	_, err := k.cfg.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, gerr := k.cfg.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			for lk, lv := range labels {
				if cur.Labels == nil {
					cur.Labels = map[string]string{}
				}
				cur.Labels[lk] = lv
			}
			_, uerr := k.cfg.Client.CoreV1().Nodes().Update(ctx, cur, metav1.UpdateOptions{})
			return uerr
		})
	}
	if err != nil {
		return fmt.Errorf("kubelet: register node %s: %w", name, err)
	}
	if err := k.updateNodeStatus(ctx, name); err != nil {
		return fmt.Errorf("kubelet: node %s status: %w", name, err)
	}
	if err := k.renewLease(ctx, name); err != nil {
		return fmt.Errorf("kubelet: node %s lease: %w", name, err)
	}
	return nil
}

func (k *Kubelet) updateNodeStatus(ctx context.Context, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := k.cfg.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		st := k.nodeStatus(metav1.Now())
		st.Conditions = mergeNodeConditions(cur.Status.Conditions, st.Conditions)
		st.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: k.cfg.HostIP}, {Type: v1.NodeHostName, Address: name}}
		cur.Status = st
		_, err = k.cfg.Client.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// renewLease is the node heartbeat the node lifecycle controller watches.
func (k *Kubelet) renewLease(ctx context.Context, name string) error {
	leases := k.cfg.Client.CoordinationV1().Leases(v1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	dur := int32(leaseDuration / time.Second)
	l, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, nerr := k.cfg.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if nerr != nil {
			return nerr
		}
		l = &coordv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: v1.NamespaceNodeLease, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: name, UID: node.UID,
			}}},
			Spec: coordv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: &dur, RenewTime: &now},
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &name, &dur, &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// heartbeat renews the node Lease every 10s and the node status every 30s
// until ctx ends. Failures are logged and retried: a cut API server (a fault
// test) must not stop the node agent.
func (k *Kubelet) heartbeat(ctx context.Context, name string) {
	lease := time.NewTicker(leaseRenew)
	defer lease.Stop()
	status := time.NewTicker(nodeStatusEvery)
	defer status.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			if err := k.renewLease(ctx, name); err != nil && ctx.Err() == nil {
				k.log.Warn().Err(err).Str("node", name).Msg("node lease renewal failed")
			}
		case <-status.C:
			err := k.updateNodeStatus(ctx, name)
			if apierrors.IsNotFound(err) {
				// Someone deleted the Node: register it again, as a real
				// kubelet does.
				k.log.Warn().Str("node", name).Msg("node object deleted: registering it again")
				err = k.registerNode(ctx, name)
			}
			if err != nil && ctx.Err() == nil {
				k.log.Warn().Err(err).Str("node", name).Msg("node status update failed")
			}
		}
	}
}
