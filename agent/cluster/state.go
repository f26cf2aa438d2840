package cluster

import (
	"fmt"
	"sort"
	"strings"
)

// podState is what the coordinator observed of one pod of the StatefulSet in
// one pass.
type podState struct {
	Ordinal  int
	Hostname string // the pod FQDN it announces
	K8sNode  string // spec.nodeName; empty when unknown
	Err      error  // why it did not answer; nil when it did
	View     []clusterNode
	Keys     int64
	State    string // cluster_state from CLUSTER INFO
}

func (p podState) up() bool { return p.Err == nil && len(p.View) > 0 }

func (p podState) self() clusterNode {
	n, _ := myself(p.View)
	return n
}

// clusterState is everything a coordinator decision looks at.
type clusterState struct {
	Expected   int // spec.replicas of the StatefulSet
	Replicas   int // --cluster-replicas: wanted replicas per master
	ScaleOutAs string
	Pods       []podState // sorted by ordinal; may include ordinals >= Expected still running
	// OrdinalOf maps an announced hostname to the pod ordinal it names, so
	// nodes of pods that are gone can still be told apart.
	OrdinalOf func(hostname string) (int, bool)
}

// index is derived facts over a clusterState, computed once per decision.
type index struct {
	s        clusterState
	up       map[int]podState // ordinal -> pod that answered
	idOrd    map[string]int   // node ID -> ordinal, for pods that answered
	owner    [clusterSlots]string
	covered  int
	nodes    map[string]clusterNode // every node ID seen, the freshest line we trust
	replicas map[string]map[string]bool
}

func newIndex(s clusterState) *index {
	x := &index{s: s, up: map[int]podState{}, idOrd: map[string]int{}, nodes: map[string]clusterNode{},
		replicas: map[string]map[string]bool{}}
	for _, p := range s.Pods {
		if !p.up() {
			continue
		}
		x.up[p.Ordinal] = p
		me := p.self()
		x.idOrd[me.ID] = p.Ordinal
		x.nodes[me.ID] = me // a node is the authority on itself
	}
	// Gossip about nodes whose pod did not answer fills in the rest.
	for _, p := range s.Pods {
		if !p.up() {
			continue
		}
		for _, n := range p.View {
			if _, ok := x.nodes[n.ID]; !ok {
				x.nodes[n.ID] = n
			}
		}
	}
	ids := make([]string, 0, len(x.nodes))
	for id := range x.nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for _, r := range x.nodes[id].Slots {
			for s := r.From; s <= r.To; s++ {
				if x.owner[s] == "" {
					x.owner[s] = id
					x.covered++
				}
			}
		}
	}
	// Replicas per master: every pod that answered is the authority on whom
	// it follows; a master's own view adds replicas whose pod didn't answer.
	add := func(master, replica string) {
		if x.replicas[master] == nil {
			x.replicas[master] = map[string]bool{}
		}
		x.replicas[master][replica] = true
	}
	for _, p := range x.upPods() {
		if me := p.self(); me.MasterID != "" {
			add(me.MasterID, me.ID)
		}
	}
	for _, p := range x.upPods() {
		me := p.self()
		for _, n := range p.View {
			if n.MasterID == me.ID && !n.failing() {
				if _, isPod := x.idOrd[n.ID]; !isPod {
					add(me.ID, n.ID)
				}
			}
		}
	}
	return x
}

// ordinalOf is the pod a hostname names.
func (x *index) ordinalOf(hostname string) (int, bool) {
	if x.s.OrdinalOf == nil || hostname == "" {
		return 0, false
	}
	return x.s.OrdinalOf(hostname)
}

// upPods are the pods that answered, by ordinal.
func (x *index) upPods() []podState {
	out := make([]podState, 0, len(x.up))
	for _, p := range x.s.Pods {
		if p.up() {
			out = append(out, p)
		}
	}
	return out
}

// masters are the pods that answered and hold slots, by ordinal.
func (x *index) masters() []podState {
	var out []podState
	for _, p := range x.upPods() {
		if me := p.self(); me.isMaster() && len(me.Slots) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// keptMasters are the masters that stay: below spec.replicas. A master
// above it is being removed and drains its slots in its preStop.
func (x *index) keptMasters() []podState {
	var out []podState
	for _, m := range x.masters() {
		if m.Ordinal < x.s.Expected {
			out = append(out, m)
		}
	}
	return out
}

// empty says whether a pod is a fresh node: a master with no slots, no
// master, no keys and no slot in transit. Only such a node may be given
// slots or made a replica.
func (x *index) empty(p podState) bool {
	me := p.self()
	return me.isMaster() && len(me.Slots) == 0 && p.Keys == 0 && len(me.Importing) == 0 && len(me.Migrating) == 0
}

// candidates are expected pods that answered and are fresh nodes.
func (x *index) candidates() []podState {
	var out []podState
	for _, p := range x.upPods() {
		if p.Ordinal < x.s.Expected && x.empty(p) {
			out = append(out, p)
		}
	}
	return out
}

func (x *index) missing() []int {
	var out []int
	for i := 0; i < x.s.Expected; i++ {
		if _, ok := x.up[i]; !ok {
			out = append(out, i)
		}
	}
	return out
}

func (x *index) podErr(ordinal int) string {
	for _, p := range x.s.Pods {
		if p.Ordinal == ordinal && p.Err != nil {
			return p.Err.Error()
		}
	}
	return "no answer"
}

func ordinalsString(ords []int) string {
	s := make([]string, len(ords))
	for i, o := range ords {
		s[i] = fmt.Sprint(o)
	}
	return strings.Join(s, ",")
}
