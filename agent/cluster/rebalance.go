package cluster

import (
	"fmt"
	"sort"
)

// rebalanceThreshold is how far (per cent of its fair share) a master may sit
// below its share before slots are moved to it, as redis-cli's default.
const rebalanceThreshold = 2

// finishOpenSlots resumes a reshard that stopped half way: a slot left
// MIGRATING on its owner (or IMPORTING on the target while the source still
// owns it) is moved to the target, keys included. Nothing else is decided
// while a slot is open.
func finishOpenSlots(x *index) (clusterAction, bool) {
	var moves []slotMove
	seen := map[int]bool{}
	var waits []string
	add := func(slot int, fromID, toID string) {
		if seen[slot] {
			return
		}
		from, okF := x.idOrd[fromID]
		to, okT := x.idOrd[toID]
		if !okF || !okT {
			waits = append(waits, fmt.Sprintf("slot %d is open between %s and %s but one of them does not answer", slot, fromID, toID))
			return
		}
		seen[slot] = true
		moves = append(moves, slotMove{Slot: slot, From: from, To: to, FromID: fromID, ToID: toID})
	}
	for _, p := range x.upPods() {
		me := p.self()
		for _, slot := range sortedKeys(me.Migrating) {
			add(slot, me.ID, me.Migrating[slot])
		}
	}
	for _, p := range x.upPods() {
		me := p.self()
		for _, slot := range sortedKeys(me.Importing) {
			if src := me.Importing[slot]; x.owner[slot] == src {
				add(slot, src, me.ID)
			}
		}
	}
	if len(moves) == 0 {
		if len(waits) > 0 {
			return clusterAction{Kind: actWait, Reason: waits[0]}, true
		}
		return clusterAction{}, false
	}
	sort.Slice(moves, func(i, j int) bool { return moves[i].Slot < moves[j].Slot })
	return clusterAction{Kind: actMoveSlots, Moves: moves, Reason: fmt.Sprintf("finishing %d slots left open by an interrupted reshard (first: slot %d from pod %d to pod %d)",
		len(moves), moves[0].Slot, moves[0].From, moves[0].To)}, true
}

// planNewMaster (--scale-out-as=master) makes the lowest fresh pod a master
// and moves slots to it, and resumes a move that stopped before a master had
// its share. Slots come from the masters furthest above their share, highest
// slots first; keys move with them (see moveSlot).
func planNewMaster(x *index) (clusterAction, bool) {
	masters := x.keptMasters()
	if len(masters) == 0 {
		return clusterAction{}, false
	}
	cands := x.candidates()
	if len(cands) > 0 {
		masters = append(masters, cands[0])
		sort.Slice(masters, func(i, j int) bool { return masters[i].Ordinal < masters[j].Ordinal })
	}
	want := fairShares(len(masters))
	have := make([]int, len(masters))
	under := false
	for i, m := range masters {
		have[i] = m.self().slotCount()
		if (want[i]-have[i])*100 > want[i]*rebalanceThreshold {
			under = true
		}
	}
	if !under {
		return clusterAction{}, false
	}
	// Donors give their highest slots first.
	give := make([][]int, len(masters))
	for i, m := range masters {
		extra := have[i] - want[i]
		rs := m.self().Slots
		for r := len(rs) - 1; r >= 0 && extra > 0; r-- {
			for s := rs[r].To; s >= rs[r].From && extra > 0; s-- {
				give[i] = append(give[i], s)
				extra--
			}
		}
	}
	var moves []slotMove
	for i, m := range masters {
		deficit := want[i] - have[i]
		for d := range masters {
			for deficit > 0 && len(give[d]) > 0 {
				s := give[d][0]
				give[d] = give[d][1:]
				moves = append(moves, slotMove{Slot: s, From: masters[d].Ordinal, To: m.Ordinal, FromID: masters[d].self().ID, ToID: m.self().ID})
				deficit--
			}
		}
	}
	if len(moves) == 0 {
		return clusterAction{}, false
	}
	sort.Slice(moves, func(i, j int) bool { return moves[i].Slot < moves[j].Slot })
	return clusterAction{Kind: actMoveSlots, Moves: moves, Reason: fmt.Sprintf("rebalancing over %d masters (--scale-out-as=master): moving %d slots with their keys", len(masters), len(moves))}, true
}

// fairShares is how many slots each of n masters should hold.
func fairShares(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = clusterSlots / n
		if i < clusterSlots%n {
			out[i]++
		}
	}
	return out
}

// planDrain moves every slot of the pod being removed (a scale-in below its
// ordinal) to the masters that stay, filling the ones furthest below their
// share first, so its keys survive the pod.
func planDrain(s clusterState, ordinal int) ([]slotMove, error) {
	x := newIndex(s)
	p, ok := x.up[ordinal]
	if !ok {
		return nil, fmt.Errorf("pod %d does not answer", ordinal)
	}
	var stay []podState
	for _, m := range x.masters() {
		if m.Ordinal < s.Expected && m.Ordinal != ordinal {
			stay = append(stay, m)
		}
	}
	if len(stay) == 0 {
		return nil, fmt.Errorf("no master below ordinal %d answers to take the slots", s.Expected)
	}
	var slots []int
	for _, r := range p.self().Slots {
		for s := r.From; s <= r.To; s++ {
			slots = append(slots, s)
		}
	}
	want := fairShares(len(stay))
	have := make([]int, len(stay))
	for i, m := range stay {
		have[i] = m.self().slotCount()
	}
	from := p.self().ID
	var moves []slotMove
	for len(slots) > 0 {
		best := 0 // the receiver furthest below its share
		for i := range stay {
			if want[i]-have[i] > want[best]-have[best] {
				best = i
			}
		}
		n := max(1, min(len(slots), want[best]-have[best]))
		for _, sl := range slots[:n] {
			moves = append(moves, slotMove{Slot: sl, From: ordinal, To: stay[best].Ordinal, FromID: from, ToID: stay[best].self().ID})
		}
		slots, have[best] = slots[n:], have[best]+n
	}
	return moves, nil
}
