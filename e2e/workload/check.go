package workload

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Result is what one writer's history shows once read back.
type Result struct {
	Name     string
	Mode     Mode
	Attempts int
	Acked    int
	// Wait0 counts SETs answered OK that no replica acknowledged (ModeWait1):
	// not acknowledged, so not counted as lost when they vanish.
	Wait0 int
	// Errors counts attempts whose write or WAIT failed.
	Errors int
	// AckedLost counts acknowledged writes missing (or holding another
	// value) after the fault healed; LostKeys names up to ten of them.
	AckedLost int
	LostKeys  []string
	// LostFrom and LostTo span the answers of the lost writes (not for the
	// counter): when in the run they were acknowledged.
	LostFrom, LostTo time.Time
	// PresentUnacked counts writes that were not acknowledged (an error, a
	// timeout, WAIT 0) but are present: indeterminate writes that landed.
	// Not an error — a client that retries them must be idempotent.
	PresentUnacked int
	// LongestGap is the longest time between two successive acknowledged
	// writes (from the run's start to the first and from the last to the
	// run's end count too), GapFrom/GapTo its ends.
	LongestGap      time.Duration
	GapFrom, GapTo  time.Time
	FirstError      time.Time // zero: no error
	FirstErrorText  string    // what the first failed attempt said
	LastError       time.Time
	CounterFinal    int64 // ModeCounter: the value read back
	CounterLastAck  int64 // ModeCounter: INCR's last answer
	CounterRegress  int   // ModeCounter: answers lower than an earlier one
	CounterReadable bool  // ModeCounter: the key was present
}

// Check judges a history against what a fresh client read back: present
// maps each key found to its value (absent keys are missing). Pure.
//
// For the counter, acknowledged increments are lost when an answer is not
// above the previous answer (the counter went back: a failover dropped the
// tail; previous minus answer plus one were lost) or when the final value is
// below the last answer; AckedLost sums those shortfalls. Increments that
// failed but landed raise the final value and are reported as
// PresentUnacked (final minus last answer).
func Check(h History, present map[string]string) Result {
	r := Result{Name: h.Name, Mode: h.Mode, Attempts: len(h.Ops)}
	last := h.Start
	gap := func(to time.Time) {
		if d := to.Sub(last); d > r.LongestGap {
			r.LongestGap, r.GapFrom, r.GapTo = d, last, to
		}
	}
	var high int64
	for _, o := range h.Ops {
		acked := o.Acked(h.Mode)
		if o.Err != "" {
			r.Errors++
			if r.FirstError.IsZero() {
				r.FirstError, r.FirstErrorText = o.End, o.Err
			}
			r.LastError = o.End
		}
		if h.Mode == ModeWait1 && o.OK && o.Replicas == 0 {
			r.Wait0++
		}
		if !acked {
			if h.Mode != ModeCounter {
				if _, ok := present[o.Key]; ok {
					r.PresentUnacked++
				}
			}
			continue
		}
		r.Acked++
		gap(o.End)
		last = o.End
		if h.Mode == ModeCounter {
			// Judged against the previous answer, not the highest: after
			// a drop the counter climbs again from the lower value, and
			// those later answers are not losses of their own.
			if o.Value <= high {
				r.CounterRegress++
				r.AckedLost += int(high - o.Value + 1)
			}
			high = o.Value
			continue
		}
		if v, ok := present[o.Key]; !ok || v != valueFor(o.Key) {
			r.AckedLost++
			if len(r.LostKeys) < 10 {
				r.LostKeys = append(r.LostKeys, o.Key)
			}
			if r.LostFrom.IsZero() {
				r.LostFrom = o.End
			}
			r.LostTo = o.End
		}
	}
	end := h.End
	if end.IsZero() && len(h.Ops) > 0 {
		end = h.Ops[len(h.Ops)-1].End
	}
	if end.After(last) {
		gap(end)
	}
	if h.Mode == ModeCounter {
		r.CounterLastAck = high
		if s, ok := present[h.CounterKey]; ok {
			r.CounterReadable = true
			r.CounterFinal, _ = strconv.ParseInt(s, 10, 64)
		}
		if r.CounterFinal < high {
			r.AckedLost += int(high - r.CounterFinal)
		} else {
			r.PresentUnacked = int(r.CounterFinal - high)
		}
	}
	return r
}

// Readback reads every key of h through c (a fresh client, after the fault
// healed). Missing keys are absent from the map; any other error fails the
// whole read, since a partial read cannot tell lost from unreadable.
func Readback(ctx context.Context, c redis.UniversalClient, h History) (map[string]string, error) {
	keys := h.Keys()
	out := make(map[string]string, len(keys))
	const chunk = 500
	for i := 0; i < len(keys); i += chunk {
		part := keys[i:min(i+chunk, len(keys))]
		cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range part {
				p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read back %d keys of %s: %w", len(keys), h.Name, err)
		}
		for j, cmd := range cmds {
			v, err := cmd.(*redis.StringCmd).Result()
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return nil, fmt.Errorf("read back %s of %s: %w", part[j], h.Name, err)
			default:
				out[part[j]] = v
			}
		}
	}
	return out, nil
}
