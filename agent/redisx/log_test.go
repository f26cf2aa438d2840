package redisx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/rs/zerolog"
	"k8s.io/klog/v2"
)

func TestRedisLoggerWritesJSON(t *testing.T) {
	var buf bytes.Buffer
	l := redisLogger{log: zerolog.New(&buf).Level(zerolog.DebugLevel).With().Str("component", "go-redis").Logger()}
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v\n", 5, "i/o timeout")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q (%v)", buf.String(), err)
	}
	if line["level"] != "debug" || line["component"] != "go-redis" || line["message"] != "redis: connection pool: failed to dial after 5 attempts: i/o timeout" {
		t.Errorf("line %v: want level debug, component go-redis and the formatted message", line)
	}
}

func TestKlogGoesThroughZerolog(t *testing.T) {
	var buf bytes.Buffer
	RouteLibraryLogs(zerolog.New(&buf))
	defer klog.ClearLogger()
	klog.ErrorS(errors.New("forbidden"), "Server rejected event (will not retry!)")
	klog.Flush()
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatalf("klog line is not one JSON line: %q (%v)", buf.String(), err)
	}
	if line["component"] != "client-go" || line["level"] != "error" || line["message"] != "Server rejected event (will not retry!)" {
		t.Errorf("line %v: want component client-go, level error and klog's message", line)
	}
}
