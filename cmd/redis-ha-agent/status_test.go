package main

import (
	"bytes"
	"strings"
	"testing"
)

// The ENGINE column shows each agent's engine and that engine's own version,
// and "-" where the agent has not said (not read yet, an older agent, or no
// answer).
func TestWriteTableEngine(t *testing.T) {
	rep := &Report{Namespace: "default", StatefulSet: "redis", Pods: []PodReport{
		{Pod: "redis-0", Agent: map[string]any{"role": "master", "engine": "valkey", "engine_version": "8.0.1"}},
		{Pod: "redis-1", Agent: map[string]any{"role": "replica", "engine": "redis", "engine_version": "7.0.15"}},
		{Pod: "redis-2", Agent: map[string]any{"role": "replica", "engine": "", "engine_version": ""}},
		{Pod: "redis-3", AgentError: "connection refused"},
	}}
	var b bytes.Buffer
	if err := writeTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	col := strings.Index(lines[1], "ENGINE")
	if col < 0 {
		t.Fatalf("no ENGINE column in the header %q", lines[1])
	}
	want := map[string]string{"redis-0": "valkey 8.0.1", "redis-1": "redis 7.0.15", "redis-2": "-", "redis-3": "-"}
	for _, l := range lines[2:] {
		pod, _, _ := strings.Cut(l, " ")
		w, ok := want[pod]
		if !ok {
			continue
		}
		delete(want, pod)
		if got := strings.TrimSpace(l[col:]); !strings.HasPrefix(got, w+"  ") {
			t.Errorf("%s: ENGINE column starts %q, want %q", pod, got, w)
		}
	}
	if len(want) != 0 {
		t.Errorf("rows missing from the table: %v\n%s", want, b.String())
	}
}
