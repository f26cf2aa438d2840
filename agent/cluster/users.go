package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
)

// checkUsers checks, once the local redis-server answers, that every ACL
// user the agent manages may run the commands it needs (ACL DRYRUN): a
// user whose rules were overridden stops the agent at start with the
// user, the command and the fix, instead of failing later in a failover
// or a rebalance. An unanswered check is retried every second.
func (m *clusterMode) checkUsers(ctx context.Context) error {
	users := m.cfg.Users().On(acl.ModeCluster, acl.Redis)
	if len(users) == 0 {
		return nil
	}
	for {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := acl.Check(c, "redis-server "+m.cfg.PodIP, users, m.local().ACLDryRun)
		cancel()
		var perm *acl.PermissionError
		switch {
		case errors.As(err, &perm):
			m.env.Event("Warning", "ACLUserMisconfigured", err.Error())
			return err
		case err == nil:
			m.log.Info().Msg("every ACL user the agent manages may run the commands it needs")
			return nil
		}
		m.log.Debug().Err(err).Msg("cannot check the ACL users yet; retrying in a second")
		select {
		case <-ctx.Done():
			return nil
		case <-m.env.Clock.After(time.Second):
		}
	}
}
