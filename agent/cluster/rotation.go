package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/rotation"
)

// rotationPeriod is how often a rotation under way re-checks its peers.
const rotationPeriod = time.Second

// watchPassword steps the password rotation (agent/rotation) on every
// change of the file and every rotationPeriod while one is under way, in
// its own goroutine, so peer checks never delay a pass.
func (m *clusterMode) watchPassword(ctx context.Context) {
	t := m.env.Clock.NewTicker(rotationPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.env.PasswordChanged:
		case <-t.C():
			if !m.env.Rotation.Busy() {
				continue
			}
		}
		p, err := m.env.Rotation.Step(ctx, clusterRotation{m})
		if err != nil {
			m.log.Warn().Err(err).Msg("password rotation step failed; retrying in a second")
			m.env.Event("Warning", "PasswordRotationFailed", err.Error())
			continue
		}
		if p.Action != rotation.Nothing {
			m.env.Event("Normal", "PasswordRotation", "password rotation: "+p.Reason)
		}
	}
}

// clusterRotation is the rotation's commands in cluster mode: the local
// redis-server, and checks on every expected pod's. The cluster bus
// carries no password; replication (masterauth), MIGRATE and the agents'
// clients do.
type clusterRotation struct{ m *clusterMode }

var _ rotation.Ops = clusterRotation{}

func (r clusterRotation) eachPod(ctx context.Context, check func(ctx context.Context, n clusterNodeAPI) error) (bool, string) {
	m := r.m
	expected, err := m.env.Topology.Expected(ctx)
	if err != nil {
		return false, err.Error()
	}
	var failed []string
	for i := 0; i < expected; i++ {
		c, cancel := context.WithTimeout(ctx, 3*time.Second)
		n, _, err := m.peer(c, i)
		if err == nil {
			err = check(c, n)
		}
		cancel()
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", m.cfg.PodNameOf(i), err))
		}
	}
	return len(failed) == 0, strings.Join(failed, "; ")
}

// PeersAccept asks ACL GETUSER over the agent's connections, authenticated
// with the outgoing password: an AUTH with the new one would count as a
// failed login on a pod that does not accept it yet.
func (r clusterRotation) PeersAccept(ctx context.Context, pw string) (bool, string) {
	return r.eachPod(ctx, func(ctx context.Context, n clusterNodeAPI) error {
		for _, u := range r.users() {
			hs, err := n.ACLPasswords(ctx, u)
			if err != nil {
				return err
			}
			if !slices.Contains(hs, rotation.Hash(pw)) {
				return fmt.Errorf("user %s does not accept the new password yet", u)
			}
		}
		return nil
	})
}

// PeersSwitched reads each redis-server's masterauth, the one outgoing
// auth of a pod besides its agent's clients, which its agent switches
// first.
func (r clusterRotation) PeersSwitched(ctx context.Context, pw string) (bool, string) {
	return r.eachPod(ctx, func(ctx context.Context, n clusterNodeAPI) error {
		v, err := n.ConfigGet(ctx, "masterauth")
		if err != nil {
			return err
		}
		if v != pw {
			return errors.New("masterauth not switched yet")
		}
		return nil
	})
}

// users are the users holding the password (agent/acl): the default
// user unless it is off, and the ones the agent manages.
func (r clusterRotation) users() []string {
	return r.m.cfg.Users().Accepting(acl.ModeCluster, acl.Redis)
}

// Plain: masterauth first, so a replica keeps its current link to a
// master that has not changed yet.
func (r clusterRotation) Plain(ctx context.Context, pw string) error {
	local := r.m.local()
	if err := local.ConfigSet(ctx, "masterauth", pw); err != nil {
		return fmt.Errorf("CONFIG SET masterauth on the local redis-server: %w", err)
	}
	return r.only(ctx, pw)
}

// only leaves pw the one password of every user holding it.
func (r clusterRotation) only(ctx context.Context, pw string) error {
	local := r.m.local()
	for _, u := range r.users() {
		if u == "default" {
			// CONFIG SET requirepass resets the default user's passwords
			// to this one in one command.
			if err := local.ConfigSet(ctx, "requirepass", pw); err != nil {
				return fmt.Errorf("CONFIG SET requirepass on the local redis-server: %w", err)
			}
			continue
		}
		if err := local.ACLOnlyPassword(ctx, u, pw); err != nil {
			return fmt.Errorf("ACL SETUSER %s (keep one password) on the local redis-server: %w", u, err)
		}
	}
	return nil
}

func (r clusterRotation) Accept(ctx context.Context, _, target string) error {
	for _, u := range r.users() {
		if err := r.m.local().ACLAddPassword(ctx, u, target); err != nil {
			return fmt.Errorf("ACL SETUSER %s (add a password) on the local redis-server: %w", u, err)
		}
	}
	return nil
}

func (r clusterRotation) Switch(ctx context.Context, pw string) error {
	if err := r.m.local().ConfigSet(ctx, "masterauth", pw); err != nil {
		return fmt.Errorf("CONFIG SET masterauth on the local redis-server: %w", err)
	}
	return nil
}

// Drop leaves pw the one password of every user, each in one command.
func (r clusterRotation) Drop(ctx context.Context, pw string) error {
	return r.only(ctx, pw)
}
