package sentinel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

// TestInitFailsWhenItsOwnNameNeverResolves: no headless Service (or one of
// another name) is a deployment error init names, instead of booting with
// an address nobody can reach.
func TestInitFailsWhenItsOwnNameNeverResolves(t *testing.T) {
	cfg := config.Config{Identity: config.Identity{PodName: "redis-1", Namespace: "ns", StatefulSet: "redis", Service: "redis-headless"}, InitTimeout: 400 * time.Millisecond}
	dir := t.TempDir()
	cfg.RedisConfInclude, cfg.SentinelConf = filepath.Join(dir, "include.conf"), filepath.Join(dir, "sentinel.conf")
	in := sentinelInit{cfg: cfg, log: zerolog.Nop(), peers: sentinelPeers{Pods: 3, Self: 1, Addr: cfg.PodFQDN,
		Resolve: func(context.Context, string) error { return errors.New("no such host") }}}
	err := in.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), cfg.PodFQDN(1)) || !strings.Contains(err.Error(), "--headless-service (REDIS_HA_HEADLESS_SERVICE) \"redis-headless\"") {
		t.Fatalf("init whose own name never resolves: err %v; want one naming %s and the flag", err, cfg.PodFQDN(1))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("init that failed wrote %v", ents)
	}
}
