package workload

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SlotRange is an inclusive range of Redis Cluster hash slots.
type SlotRange struct{ From, To int }

// AllSlots is what a writable master claims in sentinel mode: the whole
// keyspace, so the same overlap rule serves both modes.
var allSlots = []SlotRange{{0, 16383}}

// Sample is one observation of one pod.
type Sample struct {
	At  time.Time
	Pod string
	// Known: the pod answered (directly or through exec). Unknown samples
	// count as not writable: a pod nobody can reach takes no writes.
	Known bool
	Role  string // "master" or "slave" as ROLE says
	// Fenced: the agent's /status says it paused writes (sentinel mode).
	Fenced bool
	// Probed: a probe write was sent (Sampler.ProbeWrites); ProbeOK: it
	// was answered OK. A probed sample is writable exactly when ProbeOK.
	Probed, ProbeOK bool
	// Refused: connecting to the pod's redis port was refused (a TCP
	// reset from the pod's address): no process listens there, so none
	// takes writes at that instant. Not Known (nothing answered), but
	// evidence, unlike a connection that gets no answer at all: a pod
	// whose network is gone or frozen may still be serving other clients.
	Refused bool
	// Blocked: the probe was not answered within Resolution while the
	// server answered a PING (a pause); this sample, at the probe's send
	// time, stands for the time it was held: not writable.
	Blocked bool
	// ClusterOK: cluster_state:ok (cluster mode); always true otherwise.
	ClusterOK bool
	// Slots the node claims as myself,master (cluster mode).
	Slots []SlotRange
	// Cluster marks a cluster-mode sample (claims are Slots, not all).
	Cluster bool
	Via     string // "direct" or "exec"
}

// Writable reports whether clients reaching this pod could write to it.
func (s Sample) Writable() bool {
	if s.Probed {
		return s.Known && s.ProbeOK && s.ClusterOK
	}
	return s.Known && s.Role == "master" && !s.Fenced && s.ClusterOK
}

// Claims are the slots this pod would accept writes for.
func (s Sample) Claims() []SlotRange {
	if !s.Writable() {
		return nil
	}
	if s.Cluster {
		return s.Slots
	}
	return allSlots
}

// LabelEvent is a change of a pod's role label seen on the API server.
type LabelEvent struct {
	At   time.Time
	Pod  string
	Role string // label value, "" when removed or the pod is gone
}

// Mark is a moment the test itself caused: "fault: partition redis-0".
type Mark struct {
	At    time.Time
	What  string
	Fault bool // the start of an injected fault
}

// Timeline is everything a Sampler saw during one scenario.
type Timeline struct {
	Start, End time.Time
	Samples    []Sample
	Labels     []LabelEvent
	Marks      []Mark
}

// parseSlots reads the slot fields of a CLUSTER NODES line ("0-5460",
// "5461", and "[...]" migration markers, which claim nothing).
func parseSlots(fields []string) []SlotRange {
	var out []SlotRange
	for _, f := range fields {
		if strings.HasPrefix(f, "[") {
			continue
		}
		a, b, ok := strings.Cut(f, "-")
		from, err := strconv.Atoi(a)
		if err != nil {
			continue
		}
		to := from
		if ok {
			if to, err = strconv.Atoi(b); err != nil {
				continue
			}
		}
		out = append(out, SlotRange{from, to})
	}
	return out
}

// parseClusterNodes finds the myself line of CLUSTER NODES output and
// returns its role and slots.
func parseClusterNodes(out string) (role string, slots []SlotRange, ok bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "myself") {
			continue
		}
		role = "slave"
		if strings.Contains(f[2], "master") {
			role = "master"
		}
		return role, parseSlots(f[8:]), true
	}
	return "", nil, false
}

// sortTimeline orders copies of the slices, leaving the caller's alone.
func sortTimeline(tl *Timeline) {
	tl.Samples, tl.Labels, tl.Marks = slices.Clone(tl.Samples), slices.Clone(tl.Labels), slices.Clone(tl.Marks)
	sort.SliceStable(tl.Samples, func(i, j int) bool { return tl.Samples[i].At.Before(tl.Samples[j].At) })
	sort.SliceStable(tl.Labels, func(i, j int) bool { return tl.Labels[i].At.Before(tl.Labels[j].At) })
	sort.SliceStable(tl.Marks, func(i, j int) bool { return tl.Marks[i].At.Before(tl.Marks[j].At) })
}
