package cluster

import (
	"fmt"
	"sort"
	"strings"
)

// actionKind is what the coordinator does in one pass.
type actionKind string

const (
	actNone      actionKind = "none"       // the cluster is as wanted
	actWait      actionKind = "wait"       // something must change first; Reason says what
	actAddSlots  actionKind = "add-slots"  // create the cluster or finish creating it
	actReplicate actionKind = "replicate"  // attach fresh nodes as replicas
	actMoveSlots actionKind = "move-slots" // reshard: finish open slots, or fill a new master
	actForget    actionKind = "forget"     // drop nodes that are gone for good
)

// clusterAction is one decision of the coordinator. The loop executes it and
// observes again; every decision is computed from observed state only, so a
// coordinator that dies mid-way leaves work the next one finishes.
type clusterAction struct {
	Kind      actionKind
	Reason    string
	AddSlots  map[int][]slotRange // ordinal -> slots to CLUSTER ADDSLOTSRANGE
	Replicate []replicateStep
	Moves     []slotMove
	Forget    []string // node IDs to CLUSTER FORGET on every pod that answers
}

type replicateStep struct {
	Ordinal       int
	MasterOrdinal int
	MasterID      string
}

type slotMove struct {
	Slot     int
	From, To int // ordinals
	FromID   string
	ToID     string
}

// decideCluster is the coordinator's whole decision, in priority order:
// finish slots left open by a reshard, create (or finish creating) the
// cluster, attach fresh nodes as replicas, grow by a master (by flag),
// forget nodes that are gone for good.
func decideCluster(s clusterState) clusterAction {
	x := newIndex(s)
	if a, ok := finishOpenSlots(x); ok {
		return a
	}
	if x.covered < clusterSlots {
		return planSlots(x)
	}
	if a, ok := planReplicas(x); ok {
		return a
	}
	if s.ScaleOutAs == "master" {
		if a, ok := planNewMaster(x); ok {
			return a
		}
	}
	if a, ok := planForget(x); ok {
		return a
	}
	return clusterAction{Kind: actNone, Reason: fmt.Sprintf("cluster complete: %d masters, %d pods answering of %d expected", len(x.masters()), len(x.up), s.Expected)}
}

// planSlots creates the cluster when nothing exists, or assigns the slots a
// dead coordinator left unassigned. It never gives a slot to a node that
// holds keys or slots of its own, and never touches an assigned slot, so it
// cannot lose data and cannot create a second cluster beside the first.
func planSlots(x *index) clusterAction {
	if miss := x.missing(); len(miss) > 0 {
		return clusterAction{Kind: actWait, Reason: fmt.Sprintf("%d of %d slots assigned; waiting for pods %s to answer before assigning the rest (first: %s)",
			x.covered, clusterSlots, ordinalsString(miss), x.podErr(miss[0]))}
	}
	if x.covered == 0 {
		for _, p := range x.upPods() {
			if p.Ordinal < x.s.Expected && p.Keys > 0 {
				return clusterAction{Kind: actWait, Reason: fmt.Sprintf("no slot is assigned anywhere but pod %d holds %d keys: refusing to create a cluster over data; move the keys away or delete them, or create the cluster by hand",
					p.Ordinal, p.Keys)}
			}
		}
	}
	nMasters := x.s.Expected / (1 + x.s.Replicas)
	if nMasters < 1 {
		nMasters = 1
	}
	holders := x.masters()
	if len(holders) > nMasters {
		nMasters = len(holders)
	}
	ideal := splitSlots(nMasters)
	owners := keepOwners(ideal, holders)
	fresh := append([]podState(nil), x.candidates()...)
	taken := map[string]bool{}
	for _, h := range holders {
		taken[h.K8sNode] = true
	}
	need := 0
	for _, o := range owners {
		if o < 0 {
			need++
		}
	}
	chosen := chooseMasters(fresh, need, taken)
	if len(chosen) < need {
		return clusterAction{Kind: actWait, Reason: fmt.Sprintf("%d of %d slots assigned; need %d more empty pods to become masters, found %d (a pod with keys or a replica cannot take slots)",
			x.covered, clusterSlots, need, len(chosen))}
	}
	a := clusterAction{Kind: actAddSlots, AddSlots: map[int][]slotRange{}}
	for i, r := range ideal {
		if owners[i] < 0 {
			owners[i], chosen = chosen[0], chosen[1:]
		}
		var free []int
		for s := r.From; s <= r.To; s++ {
			if x.owner[s] == "" {
				free = append(free, s)
			}
		}
		if len(free) > 0 {
			a.AddSlots[owners[i]] = append(a.AddSlots[owners[i]], rangesOf(free)...)
		}
	}
	var parts []string
	for _, o := range sortedKeys(a.AddSlots) {
		parts = append(parts, fmt.Sprintf("pod %d: %s", o, rangesString(a.AddSlots[o])))
	}
	verb := "creating the cluster"
	if x.covered > 0 {
		verb = fmt.Sprintf("finishing a creation left at %d of %d slots", x.covered, clusterSlots)
	}
	a.Reason = fmt.Sprintf("%s with %d masters: %s", verb, nMasters, strings.Join(parts, "; "))
	return a
}

// keepOwners gives each ideal range to the holder that already owns most
// of it, each holder at most one range; -1 for a range no holder owns.
func keepOwners(ideal []slotRange, holders []podState) []int {
	owners := make([]int, len(ideal))
	used := map[int]bool{}
	for i, r := range ideal {
		owners[i] = -1
		best := 0
		for _, h := range holders {
			if used[h.Ordinal] {
				continue
			}
			if c := overlap(h.self().Slots, r); c > best {
				best, owners[i] = c, h.Ordinal
			}
		}
		if owners[i] >= 0 {
			used[owners[i]] = true
		}
	}
	return owners
}

// splitSlots divides the slots into n ranges whose sizes differ by at most
// one, the same split redis-cli --cluster create makes.
func splitSlots(n int) []slotRange {
	out := make([]slotRange, n)
	per := float64(clusterSlots) / float64(n)
	first, cursor := 0, 0.0
	for i := range out {
		last := int(cursor + per - 1 + 0.5)
		if last > clusterSlots-1 || i == n-1 {
			last = clusterSlots - 1
		}
		out[i] = slotRange{first, last}
		first, cursor = last+1, cursor+per
	}
	return out
}

// chooseMasters picks n fresh pods to become masters, preferring pods on
// Kubernetes nodes that hold no master yet so one node's loss takes as few
// masters as possible; ties go to the lowest ordinal, which keeps the choice
// the same for every coordinator.
func chooseMasters(fresh []podState, n int, taken map[string]bool) []int {
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].Ordinal < fresh[j].Ordinal })
	var out []int
	picked := map[int]bool{}
	seen := map[string]bool{}
	for k := range taken {
		seen[k] = true
	}
	for _, p := range fresh {
		if len(out) == n {
			break
		}
		if p.K8sNode != "" && seen[p.K8sNode] {
			continue
		}
		seen[p.K8sNode] = p.K8sNode != ""
		out, picked[p.Ordinal] = append(out, p.Ordinal), true
	}
	for _, p := range fresh {
		if len(out) == n {
			break
		}
		if !picked[p.Ordinal] {
			out = append(out, p.Ordinal)
		}
	}
	sort.Ints(out)
	return out
}

func overlap(rs []slotRange, r slotRange) int {
	c := 0
	for _, q := range rs {
		lo, hi := max(q.From, r.From), min(q.To, r.To)
		if hi >= lo {
			c += hi - lo + 1
		}
	}
	return c
}

func rangesString(rs []slotRange) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, ",")
}

func sortedKeys[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// planForget drops nodes that are gone for good from every node table: a
// node no pod answers for, holding no slot, judged failed by the cluster,
// whose pod was removed by a scale-in or came back as a new node (its data
// volume was replaced). A node that holds slots is never forgotten.
func planForget(x *index) (clusterAction, bool) {
	failed := map[string]bool{}
	for _, p := range x.upPods() {
		for _, n := range p.View {
			if n.has("fail") {
				failed[n.ID] = true
			}
		}
	}
	var ids, why []string
	for id, n := range x.nodes {
		if _, isPod := x.idOrd[id]; isPod || !failed[id] || len(n.Slots) > 0 {
			continue
		}
		ord, known := x.ordinalOf(n.Hostname)
		if !known {
			continue // not a pod of this StatefulSet by name: not ours to judge
		}
		_, podUp := x.up[ord]
		switch {
		case ord >= x.s.Expected && !podUp:
			why = append(why, fmt.Sprintf("%s (pod %d removed by scale-in)", id, ord))
		case podUp:
			why = append(why, fmt.Sprintf("%s (pod %d came back as node %s)", id, ord, x.up[ord].self().ID))
		default:
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return clusterAction{}, false
	}
	sort.Strings(ids)
	sort.Strings(why)
	return clusterAction{Kind: actForget, Forget: ids, Reason: "forgetting failed nodes without slots that are gone for good: " + strings.Join(why, ", ")}, true
}
