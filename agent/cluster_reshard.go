package agent

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
		if err := src.Migrate(ctx, dstIP, m.cfg.RedisPort, keys, m.env.Password(), migrateTimout); err != nil {
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
