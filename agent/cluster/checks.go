package cluster

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/redis-ha-agent/redis-ha-agent/agent/redisx"
)

// meetDecision says whether this node should CLUSTER MEET a peer it reached
// at peerIP:peerPort. A peer this node knows at another address, or knows as
// failed, is met again (a pod restarted with a new IP). A peer it doesn't
// know is met only if one of the two is fresh: meeting two nodes that each
// hold slots of a different cluster would merge two clusters.
func meetDecision(mine []clusterNode, myKeys int64, peer []clusterNode, peerKeys int64, peerIP string, peerPort int) (bool, string) {
	pm, ok := myself(peer)
	if !ok {
		return false, "peer's CLUSTER NODES has no myself line"
	}
	want := net.JoinHostPort(peerIP, strconv.Itoa(peerPort))
	for _, n := range mine {
		if n.ID != pm.ID {
			continue
		}
		if n.addr() == want && !n.failing() {
			return false, "already known at " + want
		}
		if n.addr() != want {
			return true, fmt.Sprintf("known at %q, now at %s", n.addr(), want)
		}
		return true, fmt.Sprintf("known at %s but flagged %s", want, strings.Join(n.Flags, ","))
	}
	if fresh(mine, myKeys) || fresh(peer, peerKeys) {
		return true, "new to this node"
	}
	return false, fmt.Sprintf("node %s at %s holds slots or keys and so does this node, yet neither knows the other: they belong to different clusters; not meeting (merging would reassign slots)", pm.ID, want)
}

// fresh is a node that holds no keys and sees no slot assigned anywhere.
func fresh(view []clusterNode, keys int64) bool {
	if keys > 0 {
		return false
	}
	for _, n := range view {
		if len(n.Slots) > 0 {
			return false
		}
	}
	return true
}

// clusterReadiness is the readiness of one cluster node. cluster_state:ok is
// not enough after IP changes (a node can report ok while a peer holding
// slots has no address, or while a replica follows another shard's master),
// so the node table and the replica's link are checked too.
func clusterReadiness(clusterInfo map[string]string, view []clusterNode, repl redisx.ReplInfo) error {
	if st := clusterInfo["cluster_state"]; st != "ok" {
		return fmt.Errorf("cluster_state is %q, not ok", st)
	}
	me, ok := myself(view)
	if !ok {
		return fmt.Errorf("CLUSTER NODES has no myself line")
	}
	for _, n := range view {
		if len(n.Slots) > 0 && (n.has("noaddr") || n.has("fail")) {
			return fmt.Errorf("node %s holding slots %s is flagged %s", n.ID, rangesString(n.Slots), strings.Join(n.Flags, ","))
		}
	}
	if !me.isReplica() {
		return nil
	}
	if st := repl.LinkStatus(); st != "up" {
		return fmt.Errorf("replica's master_link_status is %q, not up", st)
	}
	if repl.Syncing {
		return fmt.Errorf("replica is still syncing from its master")
	}
	for _, n := range view {
		if n.ID != me.MasterID {
			continue
		}
		if n.failing() {
			return fmt.Errorf("master %s is flagged %s", n.ID, strings.Join(n.Flags, ","))
		}
		got := net.JoinHostPort(repl.MasterHost, strconv.Itoa(repl.MasterPort))
		if got != n.addr() {
			return fmt.Errorf("replica replicates from %s but its master %s is at %s in CLUSTER NODES: it follows a stale address", got, n.ID, n.addr())
		}
		return nil
	}
	return fmt.Errorf("master %s of this replica is not in CLUSTER NODES", me.MasterID)
}

// bestReplica picks the replica of this master to hand its slots to: online
// link, not failing, allowed to fail over, highest replication offset (least
// to catch up, so the shortest pause), then lowest lag, then node ID.
func bestReplica(view []clusterNode, repl redisx.ReplInfo) (clusterNode, error) {
	me, ok := myself(view)
	if !ok {
		return clusterNode{}, fmt.Errorf("CLUSTER NODES has no myself line")
	}
	type cand struct {
		n clusterNode
		l redisx.ReplicaEntry
	}
	var cs []cand
	var skipped []string
	for _, l := range repl.Replicas {
		addr := net.JoinHostPort(l.Host, strconv.Itoa(l.Port))
		var found bool
		for _, n := range view {
			if n.MasterID != me.ID || n.addr() != addr {
				continue
			}
			found = true
			switch {
			case l.State != "online":
				skipped = append(skipped, fmt.Sprintf("%s link %s", addr, l.State))
			case n.failing():
				skipped = append(skipped, fmt.Sprintf("%s flagged %s", addr, strings.Join(n.Flags, ",")))
			case n.has("nofailover"):
				skipped = append(skipped, addr+" nofailover")
			default:
				cs = append(cs, cand{n, l})
			}
		}
		if !found {
			skipped = append(skipped, addr+" not a replica of this node in CLUSTER NODES")
		}
	}
	if len(cs) == 0 {
		sort.Strings(skipped)
		return clusterNode{}, fmt.Errorf("no replica can take over from %s (%s)", me.ID, strings.Join(skipped, "; "))
	}
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.l.Offset != b.l.Offset {
			return a.l.Offset > b.l.Offset
		}
		if a.l.Lag != b.l.Lag {
			return a.l.Lag < b.l.Lag
		}
		return a.n.ID < b.n.ID
	})
	return cs[0].n, nil
}
