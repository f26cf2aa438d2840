package rotation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Phase is how far this agent is in a rotation.
type Phase int

const (
	// Idle: the local servers accept only Out, and every outgoing setting
	// uses it.
	Idle Phase = iota
	// Accepting: the local servers accept Out and Target; outgoing auth
	// is still Out, which every peer accepts.
	Accepting
	// Switched: outgoing auth is Target (= Out); the local servers still
	// accept the previous password until every peer has switched too.
	Switched
)

func (p Phase) String() string {
	switch p {
	case Idle:
		return "idle"
	case Accepting:
		return "accepting"
	case Switched:
		return "switched"
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// State is one agent's rotation, kept in memory by the Rotator.
type State struct {
	Phase Phase
	// Out is the password of every outgoing auth the agent controls
	// (masterauth, Sentinel auth-pass and sentinel-pass, its own clients).
	Out string
	// Target is the password file's value being rotated to; "" when Idle.
	Target string
	// SwitchedAt is when outgoing auth became Target (Switched).
	SwitchedAt time.Time
}

// Observation is what one step decides on. PeersAccept and PeersSwitched
// are read only in the phase that needs them (false otherwise).
type Observation struct {
	File  string // the password file's value now
	State State
	// PeersAccept: every pod's redis-server (and Sentinel) lists Target
	// among the default user's passwords.
	PeersAccept bool
	// PeersSwitched: every pod's redis-server has masterauth Target, which
	// its agent sets last when it switches.
	PeersSwitched bool
	Now           time.Time
	Grace         time.Duration
}

// Action is what a step does.
type Action int

const (
	Nothing Action = iota
	// Plain replaces the password at once, as before rotations existed:
	// auth turned on or off (one side has no password, so there is
	// nothing to accept both of).
	Plain
	// Accept adds Target to the local servers' accepted passwords.
	Accept
	// Switch moves every outgoing auth to Target.
	Switch
	// Drop leaves Target the only accepted password.
	Drop
)

func (a Action) String() string {
	return [...]string{"nothing", "plain", "accept", "switch", "drop"}[a]
}

// Plan is Decide's answer: the action, the state once it succeeded, and
// why (for logs; never a password).
type Plan struct {
	Action Action
	Next   State
	Reason string
}

// Decide is the rotation's step, a pure function of what was observed.
func Decide(o Observation) Plan {
	s, f := o.State, o.File
	switch {
	case s.Phase == Idle && f == s.Out:
		return Plan{Action: Nothing, Next: s, Reason: "no rotation"}
	case f == "" || (s.Phase == Idle && s.Out == ""):
		return Plan{Action: Plain, Next: State{Phase: Idle, Out: f}, Reason: "auth turned on or off: applied at once"}
	case s.Phase == Idle || f != s.Target:
		return Plan{Action: Accept, Next: State{Phase: Accepting, Out: s.Out, Target: f}, Reason: "new password: accept it beside the one peers use"}
	case s.Phase == Accepting && !o.PeersAccept:
		return Plan{Action: Nothing, Next: s, Reason: "waiting for every pod to accept the new password"}
	case s.Phase == Accepting:
		return Plan{Action: Switch, Next: State{Phase: Switched, Out: f, Target: f, SwitchedAt: o.Now}, Reason: "every pod accepts the new password: switch outgoing auth"}
	case !o.PeersSwitched:
		return Plan{Action: Nothing, Next: s, Reason: "waiting for every pod to switch its outgoing auth"}
	case o.Now.Sub(s.SwitchedAt) < o.Grace:
		return Plan{Action: Nothing, Next: s, Reason: "every pod switched; the old password stays for --password-rotation-grace"}
	default:
		return Plan{Action: Drop, Next: State{Phase: Idle, Out: f}, Reason: "every pod switched: drop the old password"}
	}
}

// Start is the state of an agent that starts with the file's password:
// with a password, Switched, so a restart in the middle of a rotation
// still drops a password its servers accept besides the file's once
// every peer uses the file's (for a pod that is not rotating, the drop
// changes nothing).
func Start(file string, now time.Time) State {
	if file == "" {
		return State{Phase: Idle}
	}
	return State{Phase: Switched, Out: file, Target: file, SwitchedAt: now}
}

// Hash is how ACL GETUSER lists a password: hex SHA-256.
func Hash(pw string) string {
	h := sha256.Sum256([]byte(pw))
	return hex.EncodeToString(h[:])
}

// Fingerprint is what logs may show of a password: the first 8 hex
// digits of its hash ("" for none).
func Fingerprint(pw string) string {
	if pw == "" {
		return ""
	}
	return Hash(pw)[:8]
}
