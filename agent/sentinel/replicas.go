package sentinel

import (
	"context"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
)

// expectedReplicas is --replicas, or the StatefulSet's spec.replicas when
// that is 0.
func expectedReplicas(ctx context.Context, client kubeapi.Clients, cfg config.Config) (int, error) {
	if cfg.Replicas > 0 {
		return cfg.Replicas, nil
	}
	return kubeapi.StatefulSetReplicas(ctx, client, cfg.Namespace, cfg.StatefulSet)
}
