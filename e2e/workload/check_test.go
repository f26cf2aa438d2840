package workload

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// op is an attempt ending at endMS that took 1ms.
func op(key string, endMS int, ok bool, replicas int, err string) Op {
	return Op{Key: key, Start: at(endMS - 1), End: at(endMS), OK: ok, Replicas: replicas, Err: err}
}

func incr(endMS int, v int64, err string) Op {
	return Op{Key: "c", Start: at(endMS - 1), End: at(endMS), OK: err == "", Replicas: -1, Value: v, Err: err}
}

func TestCheck(t *testing.T) {
	type want struct {
		Attempts, Acked, Wait0, Errors, AckedLost, PresentUnacked int
		LostKeys                                                  []string
		LongestGap                                                time.Duration
		GapFrom, GapTo, FirstError                                time.Time
		CounterFinal, CounterLastAck                              int64
		CounterRegress                                            int
	}
	cases := map[string]struct {
		reason  string
		h       History
		present map[string]string
		want    want
	}{
		"AllPresent": {
			reason:  "every acknowledged write read back: nothing lost; the gap is the longest spacing including the run's edges",
			h:       History{Mode: ModeWait1, Start: at(0), End: at(400), Ops: []Op{op("k1", 100, true, 1, ""), op("k2", 200, true, 2, ""), op("k3", 300, true, 1, "")}},
			present: map[string]string{"k1": "v:k1", "k2": "v:k2", "k3": "v:k3"},
			want:    want{Attempts: 3, Acked: 3, LongestGap: 100 * time.Millisecond, GapFrom: at(0), GapTo: at(100)},
		},
		"Wait0NotAcked": {
			reason:  "an OK with WAIT 0 is not acknowledged: missing is not lost, present is an unacknowledged write that landed",
			h:       History{Mode: ModeWait1, Start: at(0), End: at(300), Ops: []Op{op("k1", 100, true, 1, ""), op("k2", 150, true, 0, ""), op("k3", 200, true, 0, ""), op("k4", 290, true, 1, "")}},
			present: map[string]string{"k1": "v:k1", "k3": "v:k3", "k4": "v:k4"},
			want:    want{Attempts: 4, Acked: 2, Wait0: 2, PresentUnacked: 1, LongestGap: 190 * time.Millisecond, GapFrom: at(100), GapTo: at(290)},
		},
		"AckedLost": {
			reason:  "an acknowledged key that is missing, or holds another value, is lost",
			h:       History{Mode: ModeWait1, Start: at(0), End: at(300), Ops: []Op{op("k1", 100, true, 1, ""), op("k2", 200, true, 1, ""), op("k3", 300, true, 1, "")}},
			present: map[string]string{"k1": "v:k1", "k3": "other"},
			want:    want{Attempts: 3, Acked: 3, AckedLost: 2, LostKeys: []string{"k2", "k3"}, LongestGap: 100 * time.Millisecond, GapFrom: at(0), GapTo: at(100)},
		},
		"ErrorsAndGap": {
			reason:  "failed writes open a gap from the last success to the next; a failed write that landed is indeterminate, not lost",
			h:       History{Mode: ModeNoWait, Start: at(0), End: at(5000), Ops: []Op{op("k1", 100, true, -1, ""), op("k2", 1000, false, -1, "i/o timeout"), op("k3", 2000, false, -1, "connection refused"), op("k4", 4100, true, -1, "")}},
			present: map[string]string{"k1": "v:k1", "k2": "v:k2", "k4": "v:k4"},
			want:    want{Attempts: 4, Acked: 2, Errors: 2, PresentUnacked: 1, LongestGap: 4 * time.Second, GapFrom: at(100), GapTo: at(4100), FirstError: at(1000)},
		},
		"NeverRecovered": {
			reason:  "writes that never succeed again leave a gap up to the run's end",
			h:       History{Mode: ModeNoWait, Start: at(0), End: at(9000), Ops: []Op{op("k1", 100, true, -1, ""), op("k2", 200, false, -1, "READONLY")}},
			present: map[string]string{"k1": "v:k1"},
			want:    want{Attempts: 2, Acked: 1, Errors: 1, LongestGap: 8900 * time.Millisecond, GapFrom: at(100), GapTo: at(9000), FirstError: at(200)},
		},
		"WaitError": {
			reason:  "SET OK but WAIT failed: not acknowledged",
			h:       History{Mode: ModeWait1, Start: at(0), End: at(100), Ops: []Op{{Key: "k1", Start: at(10), End: at(50), OK: true, Replicas: -1, Err: "WAIT: EOF"}}},
			present: map[string]string{},
			want:    want{Attempts: 1, Errors: 1, LongestGap: 100 * time.Millisecond, GapFrom: at(0), GapTo: at(100), FirstError: at(50)},
		},
		"CounterIntact": {
			reason:  "increasing answers and a final value at the highest answer: nothing lost",
			h:       History{Mode: ModeCounter, CounterKey: "c", Start: at(0), End: at(400), Ops: []Op{incr(100, 1, ""), incr(200, 2, ""), incr(300, 3, "")}},
			present: map[string]string{"c": "3"},
			want:    want{Attempts: 3, Acked: 3, LongestGap: 100 * time.Millisecond, GapFrom: at(0), GapTo: at(100), CounterFinal: 3, CounterLastAck: 3},
		},
		"CounterWentBack": {
			reason:  "answers 4, 5, then 4, 5 again (a failover dropped the tail): the first 4 and 5 are lost, the second climb is not lost again",
			h:       History{Mode: ModeCounter, CounterKey: "c", Start: at(0), End: at(400), Ops: []Op{incr(100, 4, ""), incr(150, 5, ""), incr(200, 0, "EOF"), incr(300, 4, ""), incr(350, 5, "")}},
			present: map[string]string{"c": "5"},
			want:    want{Attempts: 5, Acked: 4, Errors: 1, AckedLost: 2, CounterRegress: 1, LongestGap: 150 * time.Millisecond, GapFrom: at(150), GapTo: at(300), FirstError: at(200), CounterFinal: 5, CounterLastAck: 5},
		},
		"CounterFinalBelow": {
			reason:  "the final value below the highest answer: the difference is lost",
			h:       History{Mode: ModeCounter, CounterKey: "c", Start: at(0), End: at(300), Ops: []Op{incr(100, 1, ""), incr(200, 2, ""), incr(300, 3, "")}},
			present: map[string]string{"c": "1"},
			want:    want{Attempts: 3, Acked: 3, AckedLost: 2, LongestGap: 100 * time.Millisecond, GapFrom: at(0), GapTo: at(100), CounterFinal: 1, CounterLastAck: 3},
		},
		"CounterUnackedLanded": {
			reason:  "a failed increment that landed shows as a final value above the highest answer",
			h:       History{Mode: ModeCounter, CounterKey: "c", Start: at(0), End: at(300), Ops: []Op{incr(100, 1, ""), incr(200, 0, "i/o timeout")}},
			present: map[string]string{"c": "2"},
			want:    want{Attempts: 2, Acked: 1, Errors: 1, PresentUnacked: 1, LongestGap: 200 * time.Millisecond, GapFrom: at(100), GapTo: at(300), FirstError: at(200), CounterFinal: 2, CounterLastAck: 1},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := Check(tc.h, tc.present)
			got := want{Attempts: r.Attempts, Acked: r.Acked, Wait0: r.Wait0, Errors: r.Errors, AckedLost: r.AckedLost, PresentUnacked: r.PresentUnacked,
				LostKeys: r.LostKeys, LongestGap: r.LongestGap, GapFrom: r.GapFrom, GapTo: r.GapTo, FirstError: r.FirstError,
				CounterFinal: r.CounterFinal, CounterLastAck: r.CounterLastAck, CounterRegress: r.CounterRegress}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nCheck: -want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestHistoryKeys(t *testing.T) {
	h := History{Mode: ModeWait1, Ops: []Op{{Key: "a"}, {Key: "b"}}}
	if diff := cmp.Diff([]string{"a", "b"}, h.Keys()); diff != "" {
		t.Errorf("Keys: -want +got:\n%s", diff)
	}
	c := History{Mode: ModeCounter, CounterKey: "c", Ops: []Op{{Key: "c"}, {Key: "c"}}}
	if diff := cmp.Diff([]string{"c"}, c.Keys()); diff != "" {
		t.Errorf("counter Keys: -want +got:\n%s", diff)
	}
}
