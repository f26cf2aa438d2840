package cluster

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

// NewMode builds cluster mode on the real world: peers by DNS, the
// StatefulSet from the API, the coordinator chosen by a Lease.
func NewMode(cfg config.Config, deps sidecar.Deps) (sidecar.Mode, error) {
	var coordinator atomic.Bool
	log := deps.Log.With().Str("component", "cluster").Logger()
	var regarding runtime.Object = &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: cfg.Namespace, Name: cfg.PodName}
	env := clusterEnv{
		Log: deps.Log,
		PeerIP: func(ctx context.Context, ordinal int) (string, error) {
			return resolvePod(ctx, cfg.PodFQDN(ordinal))
		},
		Topology: &sidecar.KubeTopology{Client: deps.Kube, Config: cfg},
		PodTerminating: func(ctx context.Context, ordinal int) (bool, error) {
			p, err := deps.Kube.CoreV1().Pods(cfg.Namespace).Get(ctx, cfg.PodNameOf(ordinal), metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return p.DeletionTimestamp != nil, nil
		},
		Coordinator: coordinator.Load,
		RunElection: func(ctx context.Context) error {
			return runCoordinatorElection(ctx, cfg, deps, &coordinator)
		},
		Password: func() string { return "" },
		Metrics:  deps.Metrics,
		Clock:    deps.Clock,
		TLS:      deps.TLS,
		ACLFile:  deps.ACLFile,
	}
	if deps.Password != nil {
		env.Password, env.PasswordChanged, env.Rotation = deps.Password.Get, deps.Password.Changed(), deps.Rotation
	}
	if deps.Events != nil {
		env.Event = func(eventType, reason, note string) {
			deps.Events.Eventf(regarding, nil, eventType, reason, "Reconcile", "%s", note)
		}
	}
	m := newClusterModeWith(cfg, env)
	m.log = log
	return m, nil
}

func resolvePod(ctx context.Context, fqdn string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", fqdn)
	if err != nil {
		return "", err
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("%s has no address", fqdn)
	}
	// Redis 7.0's CLUSTER MEET takes an IP, not a name.
	return ips[0].Unmap().String(), nil
}

// coordinatorLeaseScale stretches the Lease timings for cluster mode's
// coordinator. Redis Cluster fails over by itself; the coordinator only
// creates, scales and cleans up, so a holder that died without releasing
// may keep the role a minute longer, and in exchange every pod asks the API
// server about the Lease every 8 s instead of every 2 s (the defaults).
const coordinatorLeaseScale = 4

// The coordinator's Lease is a plain leader election, so it is client-go's
// leaderelection; sentinel mode's Lease follows Redis's authority (taken
// over on a Sentinel majority's word, handed over in preStop), which that
// library cannot do, so it has its own store (see sentinel/lease.go).
//
// runCoordinatorElection campaigns for the Lease --lease-name with the pod
// name as identity (unique in the namespace and stable across restarts, so a
// restarted holder recognises its own Lease), on the election client so other
// API traffic cannot starve renewals. It campaigns again after losing.
func runCoordinatorElection(ctx context.Context, cfg config.Config, deps sidecar.Deps, coordinator *atomic.Bool) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: cfg.LeaseName, Namespace: cfg.Namespace},
		Client:     deps.Election.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.PodName},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   coordinatorLeaseScale * cfg.LeaseDuration,
			RenewDeadline:   coordinatorLeaseScale * cfg.RenewDeadline,
			RetryPeriod:     coordinatorLeaseScale * cfg.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            cfg.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) {
					coordinator.Store(true)
					if deps.Metrics != nil {
						deps.Metrics.LeaseHolder.Set(1)
					}
					deps.Log.Info().Str("lease", cfg.LeaseName).Msg("this pod is the cluster coordinator")
				},
				OnStoppedLeading: func() {
					coordinator.Store(false)
					if deps.Metrics != nil {
						deps.Metrics.LeaseHolder.Set(0)
					}
					deps.Log.Info().Str("lease", cfg.LeaseName).Msg("no longer the cluster coordinator")
				},
				OnNewLeader: func(id string) {
					if deps.Metrics != nil {
						deps.Metrics.LeaseTransitions.Inc()
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("coordinator election on Lease %s/%s: %w", cfg.Namespace, cfg.LeaseName, err)
		}
		le.Run(ctx)
	}
	return nil
}
