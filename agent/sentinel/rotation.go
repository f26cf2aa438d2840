package sentinel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/rotation"
)

// rotationPeriod is how often a rotation under way re-checks its peers.
const rotationPeriod = time.Second

// watchPassword steps the password rotation (agent/rotation) on every
// change of the file and every rotationPeriod while one is under way, in
// its own goroutine: its peer checks must never delay a reconcile pass
// (the fence deadline). A step that changed something schedules a pass.
func (m *sentinelMode) watchPassword(ctx context.Context, poke func(string)) error {
	t := m.deps.Clock.NewTicker(rotationPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.deps.Password.Changed():
		case <-t.C():
			if !m.deps.Rotation.Busy() {
				continue
			}
		}
		p, err := m.deps.Rotation.Step(ctx, sentinelRotation{m})
		if err != nil {
			m.log.Warn().Err(err).Msg("password rotation step failed; retrying in a second")
			continue
		}
		if p.Action != rotation.Nothing {
			m.event(corev1.EventTypeNormal, "PasswordRotation", p.Action.String(), "password rotation: %s", p.Reason)
			poke("password rotation")
		}
	}
}

// sentinelRotation is the rotation's commands in sentinel mode: the local
// redis-server and Sentinel, the include, and checks on every pod's.
type sentinelRotation struct{ m *sentinelMode }

var _ rotation.Ops = sentinelRotation{}

func (r sentinelRotation) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 3*r.m.peers.Timeout)
}

// eachPod runs check on every pod's redis-server and Sentinel (this one's
// included) and says which did not pass.
func (r sentinelRotation) eachPod(ctx context.Context, check func(ctx context.Context, i int, n redisNode, s sentinelNode) error) (bool, string) {
	m := r.m
	sentinels := m.sentinelNodes()
	var failed []string
	for i := range sentinels {
		h := m.peers.Addr(i)
		if i == m.peers.Self {
			h = localHost(m.cfg, m.peers)
		}
		c, cancel := context.WithTimeout(ctx, 2*m.peers.Timeout)
		n := m.peers.Redis(h)
		err := check(c, i, n, sentinels[i])
		_ = n.Close()
		cancel()
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", m.cfg.PodNameOf(i), err))
		}
	}
	return len(failed) == 0, strings.Join(failed, "; ")
}

// accepts checks that every user of users lists pw.
func accepts(ctx context.Context, list func(context.Context, string) ([]string, error), users []string, pw, what string) error {
	for _, u := range users {
		hs, err := list(ctx, u)
		if err != nil {
			return err
		}
		if !slices.Contains(hs, rotation.Hash(pw)) {
			return fmt.Errorf("%s user %s does not accept the new password yet", what, u)
		}
	}
	return nil
}

// users are the users holding the password on each side (agent/acl):
// the default user (unless off) and the ones the agent manages.
func (r sentinelRotation) users(side acl.Side) []string {
	return r.m.cfg.Users().Accepting(acl.ModeSentinel, side)
}

// PeersAccept asks ACL GETUSER over connections authenticated with the
// outgoing password: an AUTH with the new one would count as a failed
// login on every pod that does not accept it yet.
func (r sentinelRotation) PeersAccept(ctx context.Context, pw string) (bool, string) {
	return r.eachPod(ctx, func(ctx context.Context, _ int, n redisNode, s sentinelNode) error {
		return errors.Join(accepts(ctx, n.ACLPasswords, r.users(acl.Redis), pw, "redis-server"), accepts(ctx, s.ACLPasswords, r.users(acl.Sentinel), pw, "Sentinel"))
	})
}

// PeersSwitched reads each redis-server's masterauth and each Sentinel's
// sentinel-pass. The agent sets masterauth last, after its own clients and
// its Sentinel's auth-pass (which no command reads back) and
// sentinel-pass, so masterauth = pw means that pod no longer
// authenticates with anything else.
func (r sentinelRotation) PeersSwitched(ctx context.Context, pw string) (bool, string) {
	return r.eachPod(ctx, func(ctx context.Context, _ int, n redisNode, s sentinelNode) error {
		sp, err := s.SentinelPass(ctx)
		if err != nil {
			return err
		}
		if sp != pw {
			return errors.New("sentinel-pass not switched yet")
		}
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

// Plain is the change without a rotation (auth turned on or off): every
// setting at once.
func (r sentinelRotation) Plain(ctx context.Context, pw string) error {
	m := r.m
	c, cancel := r.ctx(ctx)
	defer cancel()
	errs := []error{m.local.ConfigSet(c, "masterauth", pw)}
	if !m.cfg.DisableDefaultUser {
		errs = append(errs, m.local.ConfigSet(c, "requirepass", pw))
	}
	errs = append(errs, r.onlyNamed(c, pw),
		m.localSentinel().ApplyPassword(c, m.cfg.MasterName, pw),
		// A redis-server container restart reads the include again (init
		// does not run): it must carry the new password too.
		m.rewriteIncludeAuth(pw, []string{pw}))
	return errors.Join(errs...)
}

// onlyNamed leaves pw the one password of the named users the agent
// manages on the local redis-server and Sentinel.
func (r sentinelRotation) onlyNamed(ctx context.Context, pw string) error {
	m := r.m
	var redisUsers, sentinelUsers []string
	for _, u := range m.cfg.Users().On(acl.ModeSentinel, acl.Redis) {
		redisUsers = append(redisUsers, u.Name)
	}
	for _, u := range m.cfg.Users().On(acl.ModeSentinel, acl.Sentinel) {
		sentinelUsers = append(sentinelUsers, u.Name)
	}
	for _, u := range redisUsers {
		if err := m.local.ACLOnlyPassword(ctx, u, pw); err != nil {
			return err
		}
	}
	if len(sentinelUsers) == 0 {
		return nil
	}
	return m.localSentinel().OnlyPassword(ctx, sentinelUsers, pw)
}

func (r sentinelRotation) Accept(ctx context.Context, out, target string) error {
	m := r.m
	c, cancel := r.ctx(ctx)
	defer cancel()
	for _, u := range r.users(acl.Redis) {
		if err := m.local.ACLAddPassword(c, u, target); err != nil {
			return err
		}
	}
	if err := m.localSentinel().AcceptPassword(c, r.users(acl.Sentinel), target); err != nil {
		return err
	}
	return m.rewriteIncludeAuth(out, []string{out, target})
}

func (r sentinelRotation) Switch(ctx context.Context, pw string) error {
	m := r.m
	c, cancel := r.ctx(ctx)
	defer cancel()
	if err := m.localSentinel().SwitchPassword(c, m.cfg.MasterName, pw); err != nil {
		return err
	}
	if err := m.rewriteIncludeAuth(pw, nil); err != nil {
		return err
	}
	// Last: the peers read it as this pod's switch being complete.
	return m.local.ConfigSet(c, "masterauth", pw)
}

func (r sentinelRotation) Drop(ctx context.Context, pw string) error {
	m := r.m
	c, cancel := r.ctx(ctx)
	defer cancel()
	// CONFIG SET requirepass resets the default user's passwords to this
	// one in one command, as ACL SETUSER resetpass >pw does a named
	// user's: no instant without a password that works.
	if !m.cfg.DisableDefaultUser {
		if err := m.local.ConfigSet(c, "requirepass", pw); err != nil {
			return err
		}
	}
	for _, u := range m.cfg.Users().On(acl.ModeSentinel, acl.Redis) {
		if err := m.local.ACLOnlyPassword(c, u.Name, pw); err != nil {
			return err
		}
	}
	if err := m.localSentinel().OnlyPassword(c, r.users(acl.Sentinel), pw); err != nil {
		return err
	}
	return m.rewriteIncludeAuth(pw, []string{pw})
}
