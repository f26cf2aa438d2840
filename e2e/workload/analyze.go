package workload

import (
	"slices"
	"time"
)

// Interval is a stretch of time with a property, and the pods involved.
type Interval struct {
	From, To time.Time
	Pods     []string
}

// Duration of the interval.
func (i Interval) Duration() time.Duration { return i.To.Sub(i.From) }

// RoleChange is a pod's observed state changing, for timelines.
type RoleChange struct {
	At       time.Time
	Pod      string
	Role     string
	Writable bool
}

// Analysis is what a timeline shows about masters.
type Analysis struct {
	// WritableOverlaps: instants with two pods accepting writes for the
	// same slots (sentinel mode: two writable masters).
	WritableOverlaps []Interval
	// LabelOverlaps: instants with two pods labelled master.
	LabelOverlaps []Interval
	// FenceViolations: writable overlaps that lasted past the fence
	// deadline counted from the latest fault before them, or that no fault
	// explains at all.
	FenceViolations []Interval
	RoleChanges     []RoleChange
}

// Analyze finds overlaps and role changes. A pod's sample stands for its
// state until its next sample, or for staleness at most: past that the pod
// is unknown and counts as not writable. A held writable sample whose next
// sample follows the judged instant within Resolution and shows the pod not
// writable does not count there (see Resolution). Pure.
func Analyze(tl Timeline, staleness, fenceDeadline time.Duration) Analysis {
	sortTimeline(&tl)
	var a Analysis
	a.WritableOverlaps = writableOverlaps(tl, staleness, Resolution)
	a.LabelOverlaps = labelOverlaps(tl)
	for _, iv := range a.WritableOverlaps {
		fault, ok := lastFault(tl.Marks, iv.From)
		if !ok || iv.To.After(fault.Add(fenceDeadline)) {
			a.FenceViolations = append(a.FenceViolations, iv)
		}
	}
	prev := map[string]Sample{}
	for _, s := range tl.Samples {
		if !s.Known {
			continue
		}
		p, seen := prev[s.Pod]
		if !seen || p.Role != s.Role || p.Writable() != s.Writable() {
			a.RoleChanges = append(a.RoleChanges, RoleChange{At: s.At, Pod: s.Pod, Role: s.Role, Writable: s.Writable()})
		}
		prev[s.Pod] = s
	}
	return a
}

func lastFault(marks []Mark, before time.Time) (time.Time, bool) {
	var t time.Time
	ok := false
	for _, m := range marks {
		if m.Fault && !m.At.After(before) {
			t, ok = m.At, true
		}
	}
	return t, ok
}

func overlaps(a, b []SlotRange) bool {
	for _, x := range a {
		for _, y := range b {
			if x.From <= y.To && y.From <= x.To {
				return true
			}
		}
	}
	return false
}

// Resolution is the oracle's time resolution at a handover. A pod's
// writable sample, held after it was taken, stands until its next sample,
// except when that next sample comes at most Resolution after the instant
// judged and shows the pod not writable: then the pod counts as not
// writable at that instant. (A sample taken at the instant itself always
// stands: it is an observation, not a held one.)
// The pod went from writable to not writable somewhere between its two
// samples, and a next sample that close is taken to place the change before
// the instant. The Sampler re-samples every other pod as soon as one turns
// writable, so at a handover the old master's next sample comes a few
// milliseconds after the new master's first writable one; a window of two
// writable masters shorter than Resolution around a handover is below what
// this oracle can tell apart, and anything longer is counted. The Sampler
// also records a probe write not answered within Resolution as not
// writable at the moment it was sent (a paused server).
//
// 50 ms: well above the few milliseconds a re-sample takes on a loaded
// machine (three round trips on the pod network), well below the 100 ms
// sampling interval and the shortest real overlap seen so far (0.24 s
// after a thawed master).
const Resolution = 50 * time.Millisecond

// contradicts: the pod's next sample, at most resolution after t, shows
// it not writable. Only an answer or a refused connection contradicts; an
// unanswered sample is no evidence either way.
func contradicts(next Sample, t time.Time, resolution time.Duration) bool {
	return (next.Known || next.Refused) && !next.Writable() && next.At.Sub(t) <= resolution
}

// writableOverlaps judges every sample instant: two pods overlap there
// when each one's last sample claims a common slot, is at most staleness
// old, and, if taken before the instant, is not contradicted by its next
// sample (see Resolution). An
// interval runs from the first instant with an overlap to the first
// without one (or the last sample).
func writableOverlaps(tl Timeline, staleness, resolution time.Duration) []Interval {
	// next[i]: index of the same pod's next sample, -1 when none.
	next := make([]int, len(tl.Samples))
	later := map[string]int{}
	for i := len(tl.Samples) - 1; i >= 0; i-- {
		next[i] = -1
		if j, ok := later[tl.Samples[i].Pod]; ok {
			next[i] = j
		}
		later[tl.Samples[i].Pod] = i
	}
	last := map[string]int{}
	var out []Interval
	var open *Interval
	for i, s := range tl.Samples {
		last[s.Pod] = i
		t := s.At
		var live []Sample
		for _, j := range last {
			st := tl.Samples[j]
			if t.Sub(st.At) > staleness || len(st.Claims()) == 0 {
				continue
			}
			if n := next[j]; n >= 0 && st.At.Before(t) && contradicts(tl.Samples[n], t, resolution) {
				continue
			}
			live = append(live, st)
		}
		var pods []string
		for i := range live {
			for j := i + 1; j < len(live); j++ {
				if overlaps(live[i].Claims(), live[j].Claims()) {
					pods = append(pods, live[i].Pod, live[j].Pod)
				}
			}
		}
		switch {
		case len(pods) > 0 && open == nil:
			open = &Interval{From: t}
			fallthrough
		case len(pods) > 0:
			for _, p := range pods {
				if !slices.Contains(open.Pods, p) {
					open.Pods = append(open.Pods, p)
				}
			}
			open.To = t
		case open != nil:
			open.To = t
			out = append(out, *open)
			open = nil
		}
	}
	if open != nil {
		out = append(out, *open)
	}
	for i := range out {
		slices.Sort(out[i].Pods)
	}
	return out
}

func labelOverlaps(tl Timeline) []Interval {
	role := map[string]string{}
	var out []Interval
	var open *Interval
	for _, e := range tl.Labels {
		role[e.Pod] = e.Role
		var masters []string
		for p, r := range role {
			if r == "master" {
				masters = append(masters, p)
			}
		}
		slices.Sort(masters)
		switch {
		case len(masters) > 1 && open == nil:
			open = &Interval{From: e.At, To: e.At, Pods: masters}
		case len(masters) > 1:
			open.To = e.At
			for _, p := range masters {
				if !slices.Contains(open.Pods, p) {
					open.Pods = append(open.Pods, p)
				}
			}
		case open != nil:
			open.To = e.At
			out = append(out, *open)
			open = nil
		}
	}
	if open != nil {
		open.To = tl.End
		out = append(out, *open)
	}
	return out
}

// MasterMoved returns when, at or after after, a pod other than old first
// accepted writes for slots old claimed last before after (sentinel mode:
// any writable master other than old), and which pod.
func MasterMoved(tl Timeline, after time.Time, old string) (time.Time, string, bool) {
	sortTimeline(&tl)
	claims := allSlots
	for _, s := range tl.Samples {
		if s.At.After(after) {
			break
		}
		if s.Pod == old && s.Writable() {
			claims = s.Claims()
		}
	}
	for _, s := range tl.Samples {
		if s.At.Before(after) || s.Pod == old {
			continue
		}
		if overlaps(s.Claims(), claims) {
			return s.At, s.Pod, true
		}
	}
	return time.Time{}, "", false
}

// LabelMoved returns when, at or after after, a pod other than old was
// first labelled master.
func LabelMoved(tl Timeline, after time.Time, old string) (time.Time, string, bool) {
	sortTimeline(&tl)
	for _, e := range tl.Labels {
		if !e.At.Before(after) && e.Pod != old && e.Role == "master" {
			return e.At, e.Pod, true
		}
	}
	return time.Time{}, "", false
}
