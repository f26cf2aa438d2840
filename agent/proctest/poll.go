package proctest

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Interval is how often Until asks again: a poll interval, not a wait for
// a condition.
const Interval = 50 * time.Millisecond

// Until calls f until it returns nil or timeout passes (or ctx ends), and
// returns f's last error. It is the one poll loop of the tests.
func Until(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// Eventually is Until that fails the test, saying what it waited for.
func Eventually(t testing.TB, timeout time.Duration, f func() error, what string, args ...any) {
	t.Helper()
	if err := Until(context.Background(), timeout, f); err != nil {
		t.Fatalf("%s: not true %v", fmt.Sprintf(what, args...), err)
	}
}

// WaitPing waits until the redis-server or redis-sentinel at addr answers
// PING, authenticating with password ("" for none).
func WaitPing(t testing.TB, addr, password string, timeout time.Duration) {
	t.Helper()
	WaitPingTLS(t, addr, password, nil, timeout)
}

// WaitPingTLS is WaitPing over TLS with tc (nil: plaintext).
func WaitPingTLS(t testing.TB, addr, password string, tc *tls.Config, timeout time.Duration) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, Protocol: 2, DisableIdentity: true, MaxRetries: -1, DialTimeout: time.Second, TLSConfig: tc})
	defer c.Close()
	Eventually(t, timeout, func() error { return c.Ping(context.Background()).Err() }, "%s answers PING", addr)
}
