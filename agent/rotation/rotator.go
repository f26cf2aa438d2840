package rotation

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"
)

// Ops are the mode's commands for each step. Errors leave the state as it
// was, so the next step retries.
type Ops interface {
	// PeersAccept: every pod's servers (this one's included) accept pw,
	// asked over connections authenticated with the current outgoing
	// password (ACL GETUSER), so the check itself never fails a login.
	PeersAccept(ctx context.Context, pw string) (bool, string)
	// PeersSwitched: every pod's outgoing auth is pw.
	PeersSwitched(ctx context.Context, pw string) (bool, string)
	// Plain sets pw as the only password and the outgoing one at once.
	Plain(ctx context.Context, pw string) error
	// Accept makes the local servers accept target besides out (the
	// config files keep both, so a restarted server accepts both too).
	Accept(ctx context.Context, out, target string) error
	// Switch moves every outgoing auth to pw, masterauth last (peers read
	// it as the sign that the rest is done).
	Switch(ctx context.Context, pw string) error
	// Drop leaves pw the only password the local servers accept.
	Drop(ctx context.Context, pw string) error
}

// Rotator keeps one agent's rotation state and steps it.
type Rotator struct {
	file  func() string
	clk   clock.PassiveClock
	grace time.Duration
	log   zerolog.Logger

	mu sync.Mutex
	st State
}

// New starts a rotator on the file's current password (see Start).
func New(file func() string, clk clock.PassiveClock, grace time.Duration, log zerolog.Logger) *Rotator {
	return &Rotator{file: file, clk: clk, grace: grace, log: log.With().Str("component", "password-rotation").Logger(), st: Start(file(), clk.Now())}
}

// Outgoing is the password for the agent's clients and every outgoing auth
// setting: the one every peer is known to accept.
func (r *Rotator) Outgoing() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.Out
}

// State is the current state, for tests and /status.
func (r *Rotator) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// Busy: a rotation is under way, so steps should come often.
func (r *Rotator) Busy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.Phase != Idle || r.file() != r.st.Out
}

// Step observes what the decision needs, decides, and executes; it returns
// the plan carried out (Nothing included).
func (r *Rotator) Step(ctx context.Context, ops Ops) (Plan, error) {
	o := Observation{File: r.file(), State: r.State(), Grace: r.grace}
	var why string
	switch {
	case o.State.Phase == Accepting && o.File == o.State.Target:
		o.PeersAccept, why = ops.PeersAccept(ctx, o.State.Target)
	case o.State.Phase == Switched && o.File == o.State.Target:
		o.PeersSwitched, why = ops.PeersSwitched(ctx, o.State.Target)
	}
	o.Now = r.clk.Now()
	p := Decide(o)
	if p.Action == Nothing {
		if why != "" {
			r.log.Debug().Str("phase", o.State.Phase.String()).Str("waiting_for", why).Msg(p.Reason)
		}
		return p, nil
	}
	if p.Action == Switch {
		// Every pod accepts the new password: the agent's own clients may
		// use it from now on, before the peers can see this pod's switch
		// (masterauth, set last) and drop the old one.
		r.mu.Lock()
		r.st.Out = p.Next.Out
		r.mu.Unlock()
	}
	var err error
	switch p.Action {
	case Plain:
		err = ops.Plain(ctx, p.Next.Out)
	case Accept:
		err = ops.Accept(ctx, p.Next.Out, p.Next.Target)
	case Switch:
		err = ops.Switch(ctx, p.Next.Out)
	case Drop:
		err = ops.Drop(ctx, p.Next.Out)
	}
	if err != nil {
		return p, fmt.Errorf("password rotation, step %s: %w", p.Action, err)
	}
	r.mu.Lock()
	r.st = p.Next
	r.mu.Unlock()
	r.log.Info().Str("step", p.Action.String()).Str("phase", p.Next.Phase.String()).
		Str("outgoing", Fingerprint(p.Next.Out)).Str("target", Fingerprint(p.Next.Target)).Msg(p.Reason)
	return p, nil
}
