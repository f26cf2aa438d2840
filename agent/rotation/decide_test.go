package rotation

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		reason string
		o      Observation
		want   Plan
	}{
		"NoRotation": {
			reason: "the file holds the password in use: nothing to do",
			o:      Observation{File: "p1", State: State{Out: "p1"}, Now: t0},
			want:   Plan{Action: Nothing, Next: State{Out: "p1"}},
		},
		"NoAuth": {
			reason: "no password and none in use",
			o:      Observation{State: State{}, Now: t0},
			want:   Plan{Action: Nothing},
		},
		"AuthTurnedOn": {
			reason: "from no password there is nothing to keep: applied at once, as before",
			o:      Observation{File: "p1", State: State{}, Now: t0},
			want:   Plan{Action: Plain, Next: State{Out: "p1"}},
		},
		"AuthTurnedOff": {
			reason: "to no password: applied at once",
			o:      Observation{File: "", State: State{Out: "p1"}, Now: t0},
			want:   Plan{Action: Plain, Next: State{}},
		},
		"AuthTurnedOffMidRotation": {
			reason: "an empty file ends any rotation at once",
			o:      Observation{File: "", State: State{Phase: Accepting, Out: "p1", Target: "p2"}, Now: t0},
			want:   Plan{Action: Plain, Next: State{}},
		},
		"NewPasswordAccepted": {
			reason: "step 1: accept the new password beside the old, outgoing stays old",
			o:      Observation{File: "p2", State: State{Out: "p1"}, Now: t0},
			want:   Plan{Action: Accept, Next: State{Phase: Accepting, Out: "p1", Target: "p2"}},
		},
		"WaitForPeersToAccept": {
			reason: "a peer does not accept p2 yet: keep p1 outgoing",
			o:      Observation{File: "p2", State: State{Phase: Accepting, Out: "p1", Target: "p2"}, PeersAccept: false, Now: t0},
			want:   Plan{Action: Nothing, Next: State{Phase: Accepting, Out: "p1", Target: "p2"}},
		},
		"SwitchOnceAllAccept": {
			reason: "step 2: every pod accepts p2",
			o:      Observation{File: "p2", State: State{Phase: Accepting, Out: "p1", Target: "p2"}, PeersAccept: true, Now: t0},
			want:   Plan{Action: Switch, Next: State{Phase: Switched, Out: "p2", Target: "p2", SwitchedAt: t0}},
		},
		"ChangedAgainBeforeSwitch": {
			reason: "p3 arrives while accepting p2: accept p3 too, outgoing stays p1 (p2 goes at the drop)",
			o:      Observation{File: "p3", State: State{Phase: Accepting, Out: "p1", Target: "p2"}, PeersAccept: true, Now: t0},
			want:   Plan{Action: Accept, Next: State{Phase: Accepting, Out: "p1", Target: "p3"}},
		},
		"ChangedAgainAfterSwitch": {
			reason: "p3 arrives after the switch to p2: accept p3, outgoing stays p2 until every pod accepts p3",
			o:      Observation{File: "p3", State: State{Phase: Switched, Out: "p2", Target: "p2", SwitchedAt: t0}, Now: t0},
			want:   Plan{Action: Accept, Next: State{Phase: Accepting, Out: "p2", Target: "p3"}},
		},
		"RolledBack": {
			reason: "the file goes back to p1 before the switch: p1 is the target again (already accepted everywhere)",
			o:      Observation{File: "p1", State: State{Phase: Accepting, Out: "p1", Target: "p2"}, Now: t0},
			want:   Plan{Action: Accept, Next: State{Phase: Accepting, Out: "p1", Target: "p1"}},
		},
		"WaitForPeersToSwitch": {
			reason: "a peer still authenticates with p1: keep accepting it",
			o:      Observation{File: "p2", State: State{Phase: Switched, Out: "p2", Target: "p2", SwitchedAt: t0}, PeersAccept: true, PeersSwitched: false, Now: t0.Add(time.Hour)},
			want:   Plan{Action: Nothing, Next: State{Phase: Switched, Out: "p2", Target: "p2", SwitchedAt: t0}},
		},
		"GraceKeepsOld": {
			reason: "every pod switched, but the grace for applications has not passed",
			o:      Observation{File: "p2", State: State{Phase: Switched, Out: "p2", Target: "p2", SwitchedAt: t0}, PeersSwitched: true, Now: t0.Add(9 * time.Second), Grace: 10 * time.Second},
			want:   Plan{Action: Nothing, Next: State{Phase: Switched, Out: "p2", Target: "p2", SwitchedAt: t0}},
		},
		"DropAfterGrace": {
			reason: "step 3: every pod switched and the grace passed",
			o:      Observation{File: "p2", State: State{Phase: Switched, Out: "p2", Target: "p2", SwitchedAt: t0}, PeersSwitched: true, Now: t0.Add(10 * time.Second), Grace: 10 * time.Second},
			want:   Plan{Action: Drop, Next: State{Out: "p2"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Decide(tc.o)
			got.Reason = ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nDecide(): -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestStart(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	if diff := cmp.Diff(State{}, Start("", t0)); diff != "" {
		t.Errorf("Start without a password: -want +got:\n%s", diff)
	}
	// A restart in the middle of a rotation must still drop the old
	// password once every peer uses the file's.
	if diff := cmp.Diff(State{Phase: Switched, Out: "p2", Target: "p2", SwitchedAt: t0}, Start("p2", t0)); diff != "" {
		t.Errorf("Start with a password: -want +got:\n%s", diff)
	}
}

func TestFingerprintIsNotThePassword(t *testing.T) {
	if f := Fingerprint("secret"); len(f) != 8 || f == "secret" {
		t.Errorf("Fingerprint(secret) = %q, want 8 hex digits", f)
	}
	if Fingerprint("") != "" {
		t.Error("Fingerprint of no password is not empty")
	}
}
