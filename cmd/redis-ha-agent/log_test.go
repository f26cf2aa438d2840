package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestLogTimeHasMilliseconds: a JSON log line's time parses as RFC 3339 and
// carries milliseconds, so the steps of a failover can be ordered across
// pods.
func TestLogTimeHasMilliseconds(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger("json", "info", &b)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("x")
	var line struct {
		Time string `json:"time"`
	}
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatalf("log line %q: %v", b.String(), err)
	}
	ts, err := time.Parse(time.RFC3339Nano, line.Time)
	if err != nil {
		t.Fatalf("time %q is not RFC 3339: %v", line.Time, err)
	}
	if len(line.Time) != len("2006-01-02T15:04:05.000Z") && len(line.Time) != len("2006-01-02T15:04:05.000+00:00") {
		t.Errorf("time %q: want milliseconds (%s)", line.Time, logTimeFormat)
	}
	if d := time.Since(ts); d < 0 || d > time.Minute {
		t.Errorf("time %q is %s from now", line.Time, d)
	}
}
