package cluster

import (
	"reflect"
	"strings"
	"testing"
)

// The race CI hit: the coordinator marked a new node IMPORTING before gossip
// had told it who owns the slots. A node that is importing a slot ignores
// the owner gossip announces, so MIGRATE's RESTORE-ASKING was refused with
// "CLUSTERDOWN Hash slot not served" on every retry.
func TestMoveReady(t *testing.T) {
	const src, dst = "src0000000000000000000000000000000000000", "dst0000000000000000000000000000000000000"
	srcNode := clusterNode{ID: src, IP: "10.0.0.1", Port: 6379, Flags: []string{"master"}, Slots: []slotRange{{From: 0, To: 5460}}}
	dstNode := clusterNode{ID: dst, IP: "10.0.0.7", Port: 6379, Flags: []string{"master"}}
	self := func(n clusterNode) clusterNode { n.Flags = append([]string{"myself"}, n.Flags...); return n }
	importing := func(n clusterNode, slots ...int) clusterNode {
		n.Importing = map[int]string{}
		for _, s := range slots {
			n.Importing[s] = src
		}
		return n
	}
	owning := func(n clusterNode, from, to int) clusterNode { n.Slots = []slotRange{{From: from, To: to}}; return n }
	handshake := dstNode
	handshake.Flags = []string{"handshake"}
	unowned := srcNode
	unowned.Slots = nil
	for _, tc := range []struct {
		name       string
		srcView    []clusterNode
		dstView    []clusterNode
		slots      []int
		wantStable []int
		wantWait   string // a substring; "" means ready
	}{
		{"both agree", []clusterNode{self(srcNode), dstNode}, []clusterNode{srcNode, self(dstNode)}, []int{10, 11}, nil, ""},
		{"target already importing, owner known", []clusterNode{self(srcNode), dstNode}, []clusterNode{srcNode, self(importing(dstNode, 10, 11))}, []int{10, 11}, nil, ""},
		{"target already the owner (step 4 half done)", []clusterNode{self(srcNode), dstNode}, []clusterNode{unowned, self(owning(dstNode, 10, 11))}, []int{10, 11}, nil, ""},
		{"source does not know the target", []clusterNode{self(srcNode)}, []clusterNode{srcNode, self(dstNode)}, []int{10}, nil, "source does not know the target"},
		{"source still in handshake with the target", []clusterNode{self(srcNode), handshake}, []clusterNode{srcNode, self(dstNode)}, []int{10}, nil, "source does not know the target"},
		{"target does not know the source", []clusterNode{self(srcNode), dstNode}, []clusterNode{self(dstNode)}, []int{10}, nil, "target does not know the source"},
		{"target sees no owner yet", []clusterNode{self(srcNode), dstNode}, []clusterNode{unowned, self(dstNode)}, []int{10, 11}, nil, "owner of slots 10-11"},
		{"target importing slots it sees no owner of", []clusterNode{self(srcNode), dstNode}, []clusterNode{unowned, self(importing(dstNode, 10, 11))}, []int{10, 11, 12}, []int{10, 11}, "owner of slots 10-12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stable, wait := moveReady(tc.srcView, tc.dstView, tc.slots, src, dst)
			if !reflect.DeepEqual(stable, tc.wantStable) {
				t.Errorf("stable = %v, want %v", stable, tc.wantStable)
			}
			if tc.wantWait == "" && wait != "" || tc.wantWait != "" && !strings.Contains(wait, tc.wantWait) {
				t.Errorf("wait = %q, want %q", wait, tc.wantWait)
			}
		})
	}
}
