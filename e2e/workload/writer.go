package workload

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Writer issues one write at a time, every Interval, until its context ends.
type Writer struct {
	// Name labels the history in tables, e.g. "wait1/master-svc".
	Name string
	// Client is a *redis.Client (plain, or a FailoverClient from
	// redis.NewFailoverClient) or a *redis.ClusterClient. Its timeouts bound
	// each attempt: a frozen master must cost one timeout, not the run.
	Client redis.UniversalClient
	Mode   Mode
	// Interval between the starts of two attempts (attempts never overlap).
	Interval time.Duration
	// Prefix makes the keys unique to this run: Prefix:00000001, ...
	Prefix string
	// WaitTimeout is WAIT's timeout (ModeWait1). Default 1s.
	WaitTimeout time.Duration
}

// Run writes until ctx ends and returns every attempt. ctx must carry a
// deadline: a workload that could run forever is a bug in the test.
func (w *Writer) Run(ctx context.Context) (History, error) {
	h := History{Name: w.Name, Mode: w.Mode}
	if _, ok := ctx.Deadline(); !ok {
		return h, errors.New("workload.Writer.Run: context has no deadline; bound every workload with context.WithTimeout")
	}
	if w.Client == nil || w.Interval <= 0 || w.Prefix == "" {
		return h, fmt.Errorf("workload.Writer %q: Client, Interval (%s) and Prefix (%q) are required", w.Name, w.Interval, w.Prefix)
	}
	switch w.Mode {
	case ModeWait1, ModeNoWait, ModeCounter:
	default:
		return h, fmt.Errorf("workload.Writer %q: unknown mode %q (want wait1, nowait or counter)", w.Name, w.Mode)
	}
	if w.Mode == ModeCounter {
		h.CounterKey = w.Prefix + ":counter"
	}
	waitMS := w.WaitTimeout.Milliseconds()
	if waitMS <= 0 {
		waitMS = 1000
	}
	h.Start = time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			h.End = time.Now()
			return h, nil
		case <-timer.C:
		}
		start := time.Now()
		var op Op
		switch w.Mode {
		case ModeCounter:
			op = w.incr(ctx, h.CounterKey)
		default:
			op = w.set(ctx, keyName(w.Prefix, i), waitMS)
		}
		op.Start = start
		op.End = time.Now()
		if ctx.Err() != nil && !op.OK && op.Err != "" {
			// Cut off by the end of the run, not by the fault: the outcome
			// is unknown, which the checker handles like any failed write.
			op.Err = "run ended: " + op.Err
		}
		h.Ops = append(h.Ops, op)
		timer.Reset(max(0, time.Until(start.Add(w.Interval))))
	}
}

func (w *Writer) incr(ctx context.Context, key string) Op {
	v, err := w.Client.Incr(ctx, key).Result()
	if err != nil {
		return Op{Key: key, Replicas: -1, Err: err.Error()}
	}
	return Op{Key: key, OK: true, Replicas: -1, Value: v}
}

// set sends SET and, for ModeWait1, WAIT in one pipeline on one connection:
// WAIT counts replicas that reached the offset of *this connection's* last
// write, so it must not go out on another pooled connection.
func (w *Writer) set(ctx context.Context, key string, waitMS int64) Op {
	op := Op{Key: key, Replicas: -1}
	c, err := w.nodeFor(ctx, key)
	if err != nil {
		op.Err = err.Error()
		return op
	}
	var set *redis.StatusCmd
	var wait *redis.Cmd
	_, perr := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		set = p.Set(ctx, key, valueFor(key), 0)
		if w.Mode == ModeWait1 {
			wait = p.Do(ctx, "WAIT", 1, waitMS)
		}
		return nil
	})
	if err := set.Err(); err != nil {
		op.Err = err.Error()
		w.refresh(ctx, err)
		return op
	}
	// go-redis leaves the commands without an error of their own when the
	// connection failed with a Redis error while it was set up (AUTH,
	// LOADING, a Sentinel's answer): the write was never sent. Only the
	// server's OK counts.
	if set.Val() != "OK" {
		op.Err = fmt.Sprintf("SET was not answered OK (pipeline: %v)", perr)
		w.refresh(ctx, perr)
		return op
	}
	op.OK = true
	if wait != nil {
		n, err := wait.Int()
		if err != nil {
			op.Err = "WAIT: " + err.Error()
			return op
		}
		op.Replicas = n
	}
	return op
}

// nodeFor picks the connection pool that serves key: the client itself, or
// for a cluster the master that owns the key's slot in the client's view.
func (w *Writer) nodeFor(ctx context.Context, key string) (*redis.Client, error) {
	switch c := w.Client.(type) {
	case *redis.Client:
		return c, nil
	case *redis.ClusterClient:
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			c.ReloadState(ctx)
			return nil, fmt.Errorf("find the master for %s: %w", key, err)
		}
		return n, nil
	}
	return nil, fmt.Errorf("workload.Writer: unsupported client type %T (want *redis.Client or *redis.ClusterClient)", w.Client)
}

// refresh makes a cluster client re-read the slot map after a redirect or a
// dead node, which the pipeline on a single node cannot follow itself.
func (w *Writer) refresh(ctx context.Context, err error) {
	if c, ok := w.Client.(*redis.ClusterClient); ok && err != nil {
		c.ReloadState(ctx)
	}
}
