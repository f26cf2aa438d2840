package workload

import (
	"fmt"
	"time"
)

// Mode is what a Writer does per attempt.
type Mode string

const (
	// ModeWait1 writes a unique key and then asks WAIT 1 on the same
	// connection. A write counts as acknowledged only when the SET answered
	// OK and WAIT reported at least one replica: an OK with WAIT 0 is
	// exactly the write asynchronous replication may lose on failover, and
	// the promise under test is about replica-acknowledged writes.
	ModeWait1 Mode = "wait1"
	// ModeNoWait writes a unique key; an OK is the acknowledgement.
	ModeNoWait Mode = "nowait"
	// ModeCounter increments one counter key, like the seed's hit counter;
	// an answer is the acknowledgement and carries the counter's value.
	ModeCounter Mode = "counter"
)

// Op is one attempt as the client saw it.
type Op struct {
	Key   string
	Start time.Time
	End   time.Time
	// OK: the write command (SET or INCR) answered without error.
	OK bool
	// Replicas is WAIT's answer (ModeWait1), -1 when WAIT was not answered.
	Replicas int
	// Value is INCR's answer (ModeCounter).
	Value int64
	// Err is the error text of the write or of WAIT; empty on success.
	Err string
}

// Acked reports whether the client was promised this write.
func (o Op) Acked(m Mode) bool {
	if m == ModeWait1 {
		return o.OK && o.Replicas >= 1
	}
	return o.OK
}

// Latency is how long the attempt took from the client's side.
func (o Op) Latency() time.Duration { return o.End.Sub(o.Start) }

// History is one writer's record of a run.
type History struct {
	Name string // e.g. "wait1/master-svc"
	Mode Mode
	// CounterKey is the key ModeCounter increments.
	CounterKey string
	Start, End time.Time
	Ops        []Op
}

// Keys lists the keys of every attempt, acknowledged or not, in order; the
// checker reads all of them back so it can also see unacknowledged writes
// that landed.
func (h History) Keys() []string {
	if h.Mode == ModeCounter {
		return []string{h.CounterKey}
	}
	keys := make([]string, 0, len(h.Ops))
	for _, o := range h.Ops {
		keys = append(keys, o.Key)
	}
	return keys
}

// valueFor is what a Writer stores under key: the key itself, so a read back
// proves both presence and that no other writer's value replaced it.
func valueFor(key string) string { return "v:" + key }

func keyName(prefix string, i int) string { return fmt.Sprintf("%s:%08d", prefix, i) }
