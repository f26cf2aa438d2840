package config

import (
	"fmt"
	"time"
)

// The safety invariant asks that a master cut off from its replicas refuse
// writes, by itself, before Sentinel can promote another pod — even when
// this agent is frozen, killed or cut off from the API server. redis-server
// does it with min-replicas-to-write N and min-replicas-max-lag L: it
// refuses writes (NOREPLICAS) while fewer than N replicas count as good.
// The timing, from redis-server 7.0's replication.c:
//
//   - a replica sends REPLCONF ACK once a second (replicationCron), so the
//     last ACK the master got before a partition at P came at P at the latest;
//   - a replica counts as good while unixtime - repl_ack_time <= L, both
//     in whole seconds: the truncation lets it count until up to L + 1 s
//     after its last ACK;
//   - the master recounts good replicas once a second (replicationCron),
//     not at each command: up to 1 s more.
//
// So the master refuses writes at most L + 2 s after P. Sentinel promotes
// no sooner than down-after after P (its first unanswered PING, sent at P
// at the earliest, must go unanswered that long, and ODOWN, the leader
// vote and the promotion come after). Hence the rule L + 2 s < down-after,
// and the default L is the largest whole number of seconds that keeps it:
// 2 for the default down-after of 5s. L must be at least 1 (0 turns the
// check off in Redis), so down-after must be above 3s for the fence.
// What the rule does not cover, and no agent can: a master frozen (SIGSTOP,
// a hung node) that resumes may serve writes already queued on its sockets
// before its once-a-second cron recounts the good replicas.

// FenceMargin is what redis-server adds to min-replicas-max-lag before it
// refuses writes: the whole-second truncation of the ACK age plus the
// once-a-second recount.
const FenceMargin = 2 * time.Second

// redisFence is what init writes as min-replicas-to-write and
// min-replicas-max-lag.
type redisFence struct {
	ToWrite int // 0: no fence
	MaxLag  int // seconds
}

// maxSafeLag is the largest min-replicas-max-lag, in seconds, that refuses
// writes before Sentinel can promote after downAfter; below 1 there is none.
func maxSafeLag(downAfter time.Duration) int {
	// Largest whole L with L + margin < downAfter.
	return int((downAfter - FenceMargin - 1) / time.Second)
}

// FenceFor derives the fence for a StatefulSet of pods from the flags:
// --min-replicas-to-write -1 is 1 with more than one pod (0 for a single
// pod: it has no replica to wait for and no failover to race), and
// --min-replicas-max-lag 0 is the largest safe value for --down-after.
func FenceFor(cfg Config, pods int) (redisFence, error) {
	f := redisFence{ToWrite: cfg.MinReplicasToWrite, MaxLag: cfg.MinReplicasMaxLag}
	if f.ToWrite < 0 {
		f.ToWrite = 0
		if pods > 1 {
			f.ToWrite = 1
		}
	}
	safe := maxSafeLag(cfg.DownAfter)
	if f.MaxLag == 0 {
		f.MaxLag = safe
	}
	if f.ToWrite == 0 {
		// Inert without a replica count; Redis' own default then.
		if f.MaxLag < 1 {
			f.MaxLag = 10
		}
		return f, nil
	}
	if f.ToWrite >= pods {
		return redisFence{}, fmt.Errorf("--min-replicas-to-write (REDIS_HA_MIN_REPLICAS_TO_WRITE) %d needs that many replicas, but the StatefulSet has %d pod(s), so at most %d replica(s): no master could ever accept a write; use 1, or -1 for the default", f.ToWrite, pods, pods-1)
	}
	if err := checkFenceTiming(cfg.MinReplicasMaxLag, cfg.DownAfter); err != nil {
		return redisFence{}, err
	}
	return f, nil
}

// checkFenceTiming refuses a min-replicas-max-lag (0: derived) that would
// let a cut-off master accept writes after Sentinel may have promoted
// another pod.
func checkFenceTiming(maxLag int, downAfter time.Duration) error {
	safe := maxSafeLag(downAfter)
	switch {
	case maxLag < 0:
		return fmt.Errorf("--min-replicas-max-lag (REDIS_HA_MIN_REPLICAS_MAX_LAG) %d is negative: give seconds, or 0 to derive it from --down-after", maxLag)
	case safe < 1:
		return fmt.Errorf("--down-after (REDIS_HA_DOWN_AFTER) %s is too short for Redis to fence a cut-off master: it refuses writes up to --min-replicas-max-lag (at least 1s) + %s after the last replica ACK, which must be before Sentinel can promote another pod; use a --down-after above %s, or turn the fence off with --min-replicas-to-write 0 (two masters may then accept writes after a partition)", downAfter, FenceMargin, time.Second+FenceMargin)
	case maxLag > safe:
		return fmt.Errorf("--min-replicas-max-lag (REDIS_HA_MIN_REPLICAS_MAX_LAG) %d is too long for --down-after (REDIS_HA_DOWN_AFTER) %s: a master cut off from its replicas refuses writes up to %ds + %s after their last ACK, after Sentinel may have promoted another pod; use at most %d, or 0 to derive it", maxLag, downAfter, maxLag, FenceMargin, safe)
	}
	return nil
}
