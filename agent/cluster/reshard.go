package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"
)

const (
	reshardBatch  = 64  // slots per round of SETSLOT pipelines
	migrateBatch  = 100 // keys per MIGRATE
	migrateTimout = 5 * time.Second
)

// moveSlots runs the standard resharding protocol for each slot, batched:
//
//  1. target: CLUSTER SETSLOT <slot> IMPORTING <source>
//  2. source: CLUSTER SETSLOT <slot> MIGRATING <target>
//  3. MIGRATE every key of the slot from source to target
//  4. CLUSTER SETSLOT <slot> NODE <target> on the target, the source, then
//     every other master
//
// During 2-4 clients are sent ASK for keys already moved, so no write is
// lost and no key is unreachable. Each step is safe to repeat, so a
// coordinator that dies part way leaves open slots the next one finishes
// (see finishOpenSlots).
func (m *clusterMode) moveSlots(ctx context.Context, st clusterState, moves []slotMove) error {
	type pair struct{ from, to int }
	var order []pair
	groups := map[pair][]slotMove{}
	for _, mv := range moves {
		k := pair{mv.From, mv.To}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], mv)
	}
	var others []int
	for _, p := range st.Pods {
		if p.up() && p.self().isMaster() {
			others = append(others, p.Ordinal)
		}
	}
	for _, k := range order {
		g := groups[k]
		for len(g) > 0 {
			n := min(reshardBatch, len(g))
			if err := m.moveBatch(ctx, g[:n], others); err != nil {
				return err
			}
			g = g[n:]
		}
	}
	return nil
}

func (m *clusterMode) moveBatch(ctx context.Context, batch []slotMove, masters []int) error {
	mv := batch[0]
	src, _, err := m.peer(ctx, mv.From)
	if err != nil {
		return err
	}
	dst, dstIP, err := m.peer(ctx, mv.To)
	if err != nil {
		return err
	}
	slots := make([]int, len(batch))
	for i, b := range batch {
		slots[i] = b.Slot
	}
	desc := fmt.Sprintf("slots %s from pod %d to pod %d", rangesString(rangesOf(slots)), mv.From, mv.To)
	srcView, err := src.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("%s: CLUSTER NODES on source: %w", desc, err)
	}
	dstView, err := dst.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("%s: CLUSTER NODES on target: %w", desc, err)
	}
	if stable, wait := moveReady(srcView, dstView, slots, mv.FromID, mv.ToID); wait != "" {
		if len(stable) > 0 {
			if err := setSlots(ctx, dst, stable, "stable", "", ""); err != nil {
				return fmt.Errorf("%s: SETSLOT STABLE on target: %w", desc, err)
			}
		}
		return waitingError{fmt.Sprintf("%s: %s", desc, wait)}
	}
	if err := setSlots(ctx, dst, slots, "importing", mv.FromID, "already the owner"); err != nil {
		return fmt.Errorf("%s: IMPORTING on target: %w", desc, err)
	}
	if err := setSlots(ctx, src, slots, "migrating", mv.ToID, "not the owner"); err != nil {
		return fmt.Errorf("%s: MIGRATING on source: %w", desc, err)
	}
	for {
		keys, err := src.KeysInSlots(ctx, slots, migrateBatch)
		if err != nil {
			return fmt.Errorf("%s: GETKEYSINSLOT: %w", desc, err)
		}
		if len(keys) == 0 {
			break
		}
		if err := src.Migrate(ctx, dstIP, m.cfg.RedisPort, keys, m.cfg.Users().Login(m.cfg.AgentUser), m.env.Password(), migrateTimout); err != nil {
			return fmt.Errorf("%s: %w", desc, err)
		}
	}
	// The target first, as the Redis docs prescribe: once the source
	// answers MOVED instead of ASK, the target must already serve the slot.
	if err := setSlots(ctx, dst, slots, "node", mv.ToID, ""); err != nil {
		return fmt.Errorf("%s: SETSLOT NODE on target: %w", desc, err)
	}
	// A source that gave away its last slot may already have turned itself
	// into a replica of the target (cluster-allow-replica-migration): done.
	if err := setSlots(ctx, src, slots, "node", mv.ToID, "only with masters"); err != nil {
		return fmt.Errorf("%s: SETSLOT NODE on source: %w", desc, err)
	}
	for _, o := range masters {
		if o == mv.From || o == mv.To {
			continue
		}
		if c, _, err := m.peer(ctx, o); err == nil {
			// Best effort: gossip carries the new owner to the rest anyway.
			_ = setSlots(ctx, c, slots, "node", mv.ToID, "")
		}
	}
	m.log.Info().Str("move", desc).Msg("slots moved")
	return nil
}

// setSlots runs SETSLOT for each slot; a per-slot error containing benign
// (the step was already done) is not an error.
func setSlots(ctx context.Context, c clusterNodeAPI, slots []int, state, id, benign string) error {
	errs, err := c.SetSlot(ctx, slots, state, id)
	if err != nil {
		return err
	}
	for i, e := range errs {
		if e != nil && (benign == "" || !strings.Contains(e.Error(), benign)) {
			return fmt.Errorf("slot %d: %w", slots[i], e)
		}
	}
	return nil
}

// waitingError is a pass that stopped for something gossip settles by
// itself within a round or two; it is retried like an error but is not one.
type waitingError struct{ reason string }

func (w waitingError) Error() string { return "waiting: " + w.reason }

// moveReady says whether slots can move from fromID to toID now, given the
// source's and the target's CLUSTER NODES. Both must know each other, and
// the target must see the source (or itself) as the owner of every slot:
// MIGRATE's RESTORE-ASKING is refused ("CLUSTERDOWN Hash slot not served")
// by a target that knows no owner, and a target marked IMPORTING ignores
// the owner that gossip announces. So a target that is importing a slot
// whose owner it does not know (an IMPORTING set before gossip reached it)
// gets that slot back to stable; the next pass, after gossip, starts again.
func moveReady(srcView, dstView []clusterNode, slots []int, fromID, toID string) (stable []int, wait string) {
	known := func(view []clusterNode, id string) bool {
		for _, n := range view {
			if n.ID == id {
				return !n.has("handshake") && !n.has("noaddr")
			}
		}
		return false
	}
	if !known(srcView, toID) {
		return nil, fmt.Sprintf("the source does not know the target %s yet (cluster gossip)", toID)
	}
	if !known(dstView, fromID) {
		return nil, fmt.Sprintf("the target does not know the source %s yet (cluster gossip)", fromID)
	}
	me, _ := myself(dstView)
	var unowned []int
	for _, slot := range slots {
		// The target owning it already: a move that stopped after step 4
		// reached the target; the rest of the steps finish it.
		if o := ownerIn(dstView, slot); o == fromID || o == toID {
			continue
		}
		unowned = append(unowned, slot)
		if me.Importing[slot] != "" {
			stable = append(stable, slot)
		}
	}
	if len(unowned) == 0 {
		return nil, ""
	}
	return stable, fmt.Sprintf("the target does not see the source as the owner of slots %s yet (cluster gossip)", rangesString(rangesOf(unowned)))
}

// ownerIn is the node ID that a view says serves slot, or "".
func ownerIn(view []clusterNode, slot int) string {
	for _, n := range view {
		for _, r := range n.Slots {
			if slot >= r.From && slot <= r.To {
				return n.ID
			}
		}
	}
	return ""
}
