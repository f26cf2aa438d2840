package cluster

import (
	"fmt"
	"sort"
	"strings"
)

// planReplicas attaches fresh pods as replicas. Masters below
// --cluster-replicas are filled first, with a maximum matching that keeps a
// replica off its master's Kubernetes node wherever the placement allows.
// Fresh pods beyond that join the master with the fewest replicas when
// --scale-out-as=replica; with master they are left to planNewMaster.
func planReplicas(x *index) (clusterAction, bool) {
	cands := x.candidates()
	masters := x.keptMasters()
	if len(cands) == 0 || len(masters) == 0 {
		return clusterAction{}, false
	}
	count := map[int]int{}
	for _, m := range masters {
		count[m.Ordinal] = len(x.replicas[m.self().ID])
	}
	var seats []podState // one entry per missing replica
	for _, m := range masters {
		for i := count[m.Ordinal]; i < x.s.Replicas; i++ {
			seats = append(seats, m)
		}
	}
	assign := matchSeats(cands, seats) // candidate index -> seat index
	var steps []replicateStep
	var rest []podState
	for ci, c := range cands {
		si, ok := assign[ci]
		if !ok {
			rest = append(rest, c)
			continue
		}
		m := seats[si]
		steps = append(steps, replicateStep{Ordinal: c.Ordinal, MasterOrdinal: m.Ordinal, MasterID: m.self().ID})
		count[m.Ordinal]++
	}
	if x.s.ScaleOutAs != "master" {
		for _, c := range rest {
			m := fewestReplicas(masters, count, c.K8sNode)
			steps = append(steps, replicateStep{Ordinal: c.Ordinal, MasterOrdinal: m.Ordinal, MasterID: m.self().ID})
			count[m.Ordinal]++
		}
	}
	// A node can only follow a master it already knows; the meet loop
	// introduces them, and the next pass attaches the rest.
	var ready []replicateStep
	var waiting []string
	for _, st := range steps {
		if knows(x.up[st.Ordinal], st.MasterID) {
			ready = append(ready, st)
		} else {
			waiting = append(waiting, fmt.Sprintf("pod %d does not know master pod %d yet", st.Ordinal, st.MasterOrdinal))
		}
	}
	if len(ready) == 0 {
		if len(waiting) > 0 {
			return clusterAction{Kind: actWait, Reason: strings.Join(waiting, "; ")}, true
		}
		return clusterAction{}, false
	}
	parts := make([]string, len(ready))
	for i, st := range ready {
		parts[i] = fmt.Sprintf("pod %d -> master pod %d", st.Ordinal, st.MasterOrdinal)
	}
	return clusterAction{Kind: actReplicate, Replicate: ready, Reason: "attaching replicas: " + strings.Join(parts, ", ")}, true
}

func knows(p podState, id string) bool {
	for _, n := range p.View {
		if n.ID == id && !n.has("handshake") && !n.has("noaddr") {
			return true
		}
	}
	return false
}

// fewestReplicas is the master with the fewest replicas, preferring one on
// another Kubernetes node than k8sNode, then the lowest ordinal.
func fewestReplicas(masters []podState, count map[int]int, k8sNode string) podState {
	best := masters[0]
	key := func(m podState) [3]int {
		same := 0
		if k8sNode != "" && m.K8sNode == k8sNode {
			same = 1
		}
		return [3]int{count[m.Ordinal], same, m.Ordinal}
	}
	for _, m := range masters[1:] {
		a, b := key(m), key(best)
		if a[0] < b[0] || a[0] == b[0] && (a[1] < b[1] || a[1] == b[1] && a[2] < b[2]) {
			best = m
		}
	}
	return best
}

// matchSeats assigns candidates to seats (masters missing a replica): first
// a maximum bipartite matching over pairs on different Kubernetes nodes
// (augmenting paths, in ordinal order so the result is the same for every
// coordinator), then the remaining candidates take the remaining seats.
func matchSeats(cands, seats []podState) map[int]int {
	ok := func(c, s int) bool {
		return cands[c].K8sNode == "" || seats[s].K8sNode == "" || cands[c].K8sNode != seats[s].K8sNode
	}
	seatOf := map[int]int{} // seat -> candidate
	var try func(c int, seen map[int]bool) bool
	try = func(c int, seen map[int]bool) bool {
		for s := range seats { // a free seat first keeps the ordinal order
			if _, taken := seatOf[s]; ok(c, s) && !taken {
				seatOf[s] = c
				return true
			}
		}
		for s := range seats {
			if !ok(c, s) || seen[s] {
				continue
			}
			seen[s] = true
			if o, taken := seatOf[s]; !taken || try(o, seen) {
				seatOf[s] = c
				return true
			}
		}
		return false
	}
	for c := range cands {
		try(c, map[int]bool{})
	}
	out := map[int]int{}
	for s, c := range seatOf {
		out[c] = s
	}
	free := make([]int, 0, len(seats))
	for s := range seats {
		if _, taken := seatOf[s]; !taken {
			free = append(free, s)
		}
	}
	sort.Ints(free)
	for c := range cands {
		if _, done := out[c]; done || len(free) == 0 {
			continue
		}
		out[c], free = free[0], free[1:]
	}
	return out
}
