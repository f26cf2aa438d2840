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
// is unknown and counts as not writable. Pure.
func Analyze(tl Timeline, staleness, fenceDeadline time.Duration) Analysis {
	sortTimeline(&tl)
	var a Analysis
	a.WritableOverlaps = writableOverlaps(tl, staleness)
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

func writableOverlaps(tl Timeline, staleness time.Duration) []Interval {
	state := map[string]Sample{}
	var out []Interval
	var open *Interval
	for _, s := range tl.Samples {
		state[s.Pod] = s
		t := s.At
		var live []Sample
		for _, st := range state {
			if t.Sub(st.At) <= staleness && len(st.Claims()) > 0 {
				live = append(live, st)
			}
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
