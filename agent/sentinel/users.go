package sentinel

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sidecar"
)

// aclFileUsers keeps the local redis-server's --acl-file users.
func (m *sentinelMode) aclFileUsers() *sidecar.ACLFileUsers {
	return &sidecar.ACLFileUsers{File: m.deps.ACLFile, Managed: sidecar.ManagedNames(m.cfg, acl.ModeSentinel), Include: m.cfg.RedisConfInclude, IncludeMu: &m.includeMu,
		SetUser: m.local.ACLSetUser, Log: m.log, Clock: m.deps.Clock}
}

// checkUsers checks, once the local redis-server and Sentinel answer,
// that every ACL user the agent manages may run the commands it needs
// (ACL DRYRUN), so a user whose rules were overridden (an aclfile in the
// image's redis.conf, an ACL SETUSER by hand) stops the agent at start
// with the user, the command and the fix, instead of failing later in a
// failover. An unanswered check is retried every second.
func (m *sentinelMode) checkUsers(ctx context.Context) error {
	users := m.cfg.Users()
	if !users.Enabled() {
		return nil
	}
	type target struct {
		where string
		users []acl.Managed
		dry   acl.DryRun
	}
	local := localHost(m.cfg, m.peers)
	targets := []target{
		{"redis-server " + local, users.On(acl.ModeSentinel, acl.Redis), m.local.ACLDryRun},
		{"Sentinel " + local, users.On(acl.ModeSentinel, acl.Sentinel), m.localSentinel().ACLDryRun},
	}
	for _, t := range targets {
		for {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := acl.Check(c, t.where, t.users, t.dry)
			cancel()
			var perm *acl.PermissionError
			if errors.As(err, &perm) {
				m.event(corev1.EventTypeWarning, "ACLUserMisconfigured", "CheckUsers", "%s", err.Error())
				return err
			}
			if err == nil {
				break
			}
			m.log.Debug().Err(err).Msg("cannot check the ACL users yet; retrying in a second")
			select {
			case <-ctx.Done():
				return nil
			case <-m.deps.Clock.After(time.Second):
			}
		}
	}
	m.log.Info().Msg("every ACL user the agent manages may run the commands it needs")
	return nil
}
