package workload

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

// timeLines is TIME's answer as redis-cli prints it, one field a line.
func timeLines(t time.Time) string {
	return fmt.Sprintf("%d\n%d\n", t.Unix(), t.Nanosecond()/1000)
}

func TestRecordExecProbe(t *testing.T) {
	sent := at(1000)
	returned := at(2500)
	type want struct {
		emitted []Sample
		smp     Sample
		ok      bool
	}
	base := Sample{Pod: "a", Known: true, Role: "master", ClusterOK: true, Via: "exec"}
	with := func(ms int, f func(*Sample)) Sample {
		s := base
		s.At = at(ms)
		f(&s)
		return s
	}
	cases := map[string]struct {
		reason string
		out    string
		want   want
	}{
		"Prompt": {
			reason: "answered OK 2ms after the server took it up: one writable sample at the server's time",
			out:    timeLines(at(1200)) + "OK\n" + timeLines(at(1202)),
			want:   want{smp: with(1200, func(s *Sample) { s.Probed, s.ProbeOK = true, true }), ok: true},
		},
		"HeldThenOK": {
			reason: "answered OK 300ms after the first TIME (a pause, or a slow redis-cli): unknown from the first TIME, writable from its answer",
			out:    timeLines(at(1200)) + "OK\n" + timeLines(at(1500)),
			want: want{
				emitted: []Sample{with(1200, func(s *Sample) { s.Probed, s.Known = true, false })},
				smp:     with(1500, func(s *Sample) { s.Probed, s.ProbeOK = true, true }), ok: true,
			},
		},
		"HeldThenMoved": {
			reason: "answered MOVED 200ms after the first TIME (the old master of a CLUSTER FAILOVER): unknown, then not writable",
			out:    timeLines(at(1200)) + "MOVED 100 10.244.1.7:6379\n\n" + timeLines(at(1400)),
			want: want{
				emitted: []Sample{with(1200, func(s *Sample) { s.Probed, s.Known = true, false })},
				smp:     with(1400, func(s *Sample) { s.Probed = true }), ok: true,
			},
		},
		"PromptError": {
			reason: "answered NOREPLICAS at once (redis-cli prints an empty line after an error): not writable, no hold",
			out:    timeLines(at(1200)) + "NOREPLICAS Not enough good replicas to write.\n\n" + timeLines(at(1201)),
			want:   want{smp: with(1200, func(s *Sample) { s.Probed = true }), ok: true},
		},
		"HeldPastTimeout": {
			reason: "only the first TIME came back: no answer within probeTimeout; unknown throughout",
			out:    timeLines(at(1200)),
			want: want{
				emitted: []Sample{with(1200, func(s *Sample) { s.Probed, s.Known = true, false })},
				smp:     with(1200, func(s *Sample) { s.Known = false }),
			},
		},
		"OtherClock": {
			reason: "the server's clock is not ours (its TIME is outside the exec): timed at the send, no hold inferred, OK stands",
			out:    timeLines(at(90000)) + "OK\n" + timeLines(at(90400)),
			want:   want{smp: with(1000, func(s *Sample) { s.Probed, s.ProbeOK = true, true }), ok: true},
		},
		"NoOutput": {
			reason: "redis-cli printed nothing: unknown",
			out:    "Could not connect to Redis at 127.0.0.1:6379: Connection refused\n",
			want:   want{smp: with(1000, func(s *Sample) { s.Known = false })},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got want
			got.smp = base
			got.ok = recordExecProbe(&got.smp, sent, returned, tc.out, func(s Sample) { got.emitted = append(got.emitted, s) })
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestProbesOnRedis runs both probe paths against a real redis-server on
// loopback whose writes are paused, as a CLUSTER FAILOVER pauses the old
// master's: the probe is recorded not writable while held.
func TestProbesOnRedis(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("%s not in PATH: %v; install it with `make deps` (apt-get install redis-server redis-tools)", "redis-server", err)
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("%s not in PATH: %v; install it with `make deps` (apt-get install redis-server redis-tools)", "redis-cli", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir := t.TempDir()
	srv := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer admin.Close()
	for admin.Ping(ctx).Err() != nil {
		if ctx.Err() != nil {
			t.Fatal("redis-server did not answer PING")
		}
		time.Sleep(20 * time.Millisecond) // polls the server we started, bounded by ctx
	}
	pause := func(d time.Duration) {
		if err := admin.Do(ctx, "CLIENT", "PAUSE", d.Milliseconds(), "WRITE").Err(); err != nil {
			t.Fatal(err)
		}
	}
	s := &Sampler{Exec: func(ctx context.Context, _, _ string, cmd []string) (string, error) {
		out, err := exec.CommandContext(ctx, cmd[0], cmd[1:]...).CombinedOutput()
		return string(out), err
	}}
	rc := newPodClient(fmt.Sprintf("127.0.0.1:%d", port), nil)
	defer rc.Close()

	// The direct path tells a pause (a PING is answered meanwhile) and
	// records it as evidence; the exec path cannot and records unknown.
	// The exec path's redis-cli may take hundreds of milliseconds to start
	// on a loaded machine, so its pause is longer (still < probeTimeout).
	check := func(path string, evidence bool, d time.Duration, probe func(*Sample, func(Sample)) bool) {
		t.Helper()
		pause(d)
		smp := Sample{Pod: "p", Known: true, Role: "master", ClusterOK: true}
		var emitted []Sample
		if !probe(&smp, func(s Sample) { emitted = append(emitted, s) }) {
			t.Fatalf("%s: no answer from a server paused for %s (< probeTimeout)", path, d)
		}
		if len(emitted) != 1 || emitted[0].Writable() || emitted[0].Blocked != evidence || emitted[0].Known != evidence {
			t.Fatalf("%s: emitted %+v, want one not writable sample with Blocked and Known %t", path, emitted, evidence)
		}
		if !smp.Writable() {
			t.Errorf("%s: the answer after the pause is %+v, want writable", path, smp)
		}
		// The exec path's SET reaches the server only after redis-cli
		// started, some way into the pause.
		if held := smp.At.Sub(emitted[0].At); held <= Resolution || held > d+100*time.Millisecond {
			t.Errorf("%s: held %s between the held sample and the answer, want more than Resolution and at most the %s pause", path, held, d)
		}
	}
	direct := func(smp *Sample, emit func(Sample)) bool {
		return s.probeDirect(ctx, rc, ProbeKey("p"), smp, emit)
	}
	viaExec := func(smp *Sample, emit func(Sample)) bool {
		sent := time.Now()
		out, err := s.execFor(ctx, probeTimeout+time.Second, "p", []string{"sh", "-c", probeScript(fmt.Sprint(port), newSlotTags().clusterProbeKey("p", 100), sent)})
		if err != nil {
			t.Fatalf("exec: %v: %s", err, out)
		}
		return recordExecProbe(smp, sent, time.Now(), out, emit)
	}
	check("direct", true, 300*time.Millisecond, direct)
	check("exec", false, 800*time.Millisecond, viaExec)

	// A refused probe is answered at once: not writable, not held.
	if err := admin.ConfigSet(ctx, "min-replicas-to-write", "1").Err(); err != nil {
		t.Fatal(err)
	}
	for path, probe := range map[string]func(*Sample, func(Sample)) bool{"direct": direct, "exec": viaExec} {
		smp := Sample{Pod: "p", Known: true, Role: "master", ClusterOK: true}
		var emitted []Sample
		if !probe(&smp, func(s Sample) { emitted = append(emitted, s) }) || smp.Writable() || !smp.Probed || len(emitted) != 0 {
			t.Errorf("%s: NOREPLICAS gave %+v (emitted %v), want one answered, not writable sample", path, smp, emitted)
		}
	}
}

// A pod's redis port that refuses the connection (nothing listens) gives a
// sample that is evidence of not writable; one that gets no answer does not.
func TestDirectRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	ctx := context.Background()
	httpc := &http.Client{Timeout: time.Second}
	for _, cluster := range []bool{false, true} {
		s := &Sampler{Cluster: cluster, ProbeWrites: true, RedisPort: port}
		rc := newPodClient(addr, nil)
		smp := Sample{Pod: "p", Cluster: cluster, ClusterOK: !cluster}
		done := s.direct(ctx, rc, httpc, "127.0.0.1", &smp, func(Sample) {})
		_ = rc.Close()
		if !done || !smp.Refused || smp.Known || smp.Writable() {
			t.Errorf("cluster=%t: direct to %s (closed) = %t, %+v; want a complete sample, Refused, not Known, not writable", cluster, addr, done, smp)
		}
		if next := smp; !contradicts(next, smp.At, Resolution) {
			t.Errorf("cluster=%t: a refused sample does not contradict a held writable one", cluster)
		}
	}
	// A connection the server closed (EOF) counts only when a fresh dial
	// is refused: here, nothing listens.
	if s := (&Sampler{RedisPort: port}); !s.refused(ctx, io.EOF, "127.0.0.1", &Sample{}) {
		t.Errorf("EOF from a pod whose port %d refuses connections: not recorded as refused", port)
	}
	// A timeout is no evidence and is not dialled again.
	if s := (&Sampler{RedisPort: port}); s.refused(ctx, context.DeadlineExceeded, "127.0.0.1", &Sample{}) {
		t.Errorf("a timeout was recorded as refused")
	}
	// A refusal the pool remembers is no observation: once the port
	// listens again, the fresh dial finds it and nothing is recorded.
	s := &Sampler{ProbeWrites: true, RedisPort: port}
	smp := Sample{Pod: "p", ClusterOK: true}
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	defer l.Close()
	stale := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	if s.refused(ctx, stale, "127.0.0.1", &smp) || smp.Refused {
		t.Errorf("a remembered refusal while %s listens was recorded: %+v", addr, smp)
	}
}
