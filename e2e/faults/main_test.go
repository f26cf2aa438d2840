package faults

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

// cluster is the package's local cluster; TestMain owns it.
var cluster *localkube.Cluster

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; during a fault that is thousands of
	// lines saying what the histories already record.
	redis.SetLogger(quiet{})
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"}).With().Timestamp().Logger().Level(zerolog.WarnLevel)
	os.Exit(localkube.RunTests(m, localkube.Options{StateDir: os.Getenv("LOCALKUBE_TEST_STATE_DIR"), Log: log}, func(c *localkube.Cluster) { cluster = c }))
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
