package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/redis-ha-agent/redis-ha-agent/sentinelconf"
)

// scEnv are the environment variables sentinelconf render reads; tests
// unset them so a developer's or CI's environment cannot change a result.
var scEnv = []string{"REDIS_HA_MASTER_NAME", "REDIS_HA_MASTER_HOST", "REDIS_HA_MASTER_PORT", "REDIS_HA_QUORUM",
	"REDIS_HA_DOWN_AFTER", "REDIS_HA_FAILOVER_TIMEOUT", "REDIS_HA_PARALLEL_SYNCS", "REDIS_HA_ANNOUNCE_HOST",
	"REDIS_HA_SENTINEL_PORT", "POD_NAME", "POD_NAMESPACE", "REDIS_HA_PASSWORD_FILE", "REDIS_HA_PEERS", "REDIS_HA_SENTINEL_CONF",
	"LOG_FORMAT", "LOG_LEVEL"}

func scClearEnv(t *testing.T) {
	t.Helper()
	for _, k := range scEnv {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// scRender runs "redis-ha-agent sentinelconf render" through the real CLI.
func scRender(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = run(append([]string{"sentinelconf", "render"}, args...), &o, &e)
	return o.String(), e.String(), err
}

var scPodArgs = []string{
	"--master-host", "redis-0.redis-headless.prod.svc.cluster.local", "--announce-host", "redis-1.redis-headless.prod.svc.cluster.local",
	"--pod-name", "redis-1", "--namespace", "prod",
	"--peer", "redis-0.redis-headless.prod.svc.cluster.local", "--peer", "redis-2.redis-headless.prod.svc.cluster.local",
}

func TestSentinelconfRenderFlags(t *testing.T) {
	scClearEnv(t)
	t.Setenv("REDIS_HA_PEERS", "redis-0.h,redis-2=10.0.0.3")
	t.Setenv("REDIS_HA_DOWN_AFTER", "2500ms")
	got, _, err := scRender(t, "--master-host", "redis-0.h", "--announce-host", "redis-1.h", "--pod-name", "redis-1", "--namespace", "prod", "--quorum", "3")
	if err != nil {
		t.Fatal(err)
	}
	want, err := sentinelconf.Render(sentinelconf.Params{
		MasterName: "mymaster", MasterHost: "redis-0.h", MasterPort: 6379, Quorum: 3,
		DownAfter: 2500 * time.Millisecond, FailoverTimeout: time.Minute, ParallelSyncs: 1,
		MyID: sentinelconf.MyID("prod", "redis-1"), AnnounceHost: "redis-1.h", Port: 26379,
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
}

func TestSentinelconfRenderMasksPasswordOnStdout(t *testing.T) {
	scClearEnv(t)
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("pw-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := scRender(t, append(scPodArgs, "--password-file", pwFile)...)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out+errOut, "pw-0123456789") {
		t.Errorf("the password reached stdout or stderr:\n%s\n%s", out, errOut)
	}
	for _, line := range []string{"sentinel auth-pass mymaster <masked>", "requirepass <masked>", "sentinel sentinel-pass <masked>"} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("stdout lacks %q:\n%s", line, out)
		}
	}
}

func TestSentinelconfRenderErrors(t *testing.T) {
	dir := t.TempDir()
	spaced := filepath.Join(dir, "spaced")
	if err := os.WriteFile(spaced, []byte("pw with spaces"), 0o600); err != nil {
		t.Fatal(err)
	}
	quoted := filepath.Join(dir, "quoted")
	if err := os.WriteFile(quoted, []byte(`ab"cd`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		reason string
		args   []string
		want   string
	}{
		"quorum": {
			reason: "the package's field error names the flag and env var",
			args:   []string{"--quorum", "0"},
			want:   `--quorum (REDIS_HA_QUORUM) "0": must be 1 or more: a majority of the Sentinels, e.g. 2 of 3`,
		},
		"peer ip": {
			reason: "an IP does not say which pod it is, so its myid is unknown",
			args:   []string{"--peer", "10.0.0.3"},
			want:   `--peer (REDIS_HA_PEERS) "10.0.0.3" is an IP address, which does not name the pod its Sentinel myid is derived from: write it as <pod name>=10.0.0.3`,
		},
		"peer host": {
			reason: "a bad peer host names the flag",
			args:   []string{"--peer", "redis-3=bad host"},
			want:   `--peer (REDIS_HA_PEERS) "bad host": must be a DNS name or an IP address`,
		},
		"password": {
			reason: "a password Sentinel 7.0 cannot round-trip is refused without printing it",
			args:   []string{"--password-file", spaced},
			want:   "the password in --password-file (REDIS_HA_PASSWORD_FILE) " + spaced + ": contains a space, a quote or a control character; redis-sentinel 7.0 writes it unquoted when it rewrites sentinel.conf and then cannot load the file: use a password of printable characters without spaces or quotes, e.g. hex or base64",
		},
		"password with a quote inside": {
			reason: "any quote is refused, not only a leading one: Sentinel 7.0 reads ab\"cd back as an unbalanced quote",
			args:   []string{"--password-file", quoted},
			want:   "the password in --password-file (REDIS_HA_PASSWORD_FILE) " + quoted + ": contains a space, a quote or a control character; redis-sentinel 7.0 writes it unquoted when it rewrites sentinel.conf and then cannot load the file: use a password of printable characters without spaces or quotes, e.g. hex or base64",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			scClearEnv(t)
			_, _, err := scRender(t, append(append([]string{}, scPodArgs...), tc.args...)...)
			if err == nil {
				t.Fatalf("%s: no error", tc.reason)
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// A file render cannot parse is left byte for byte as it was, and the error
// names the file, the line and the way out.
func TestSentinelconfRenderLeavesInvalidFile(t *testing.T) {
	scClearEnv(t)
	orig, err := os.ReadFile("../../sentinelconf/testdata/invalid-monitor-missing-fields.conf")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sentinel.conf")
	if err := os.WriteFile(path, orig, 0o640); err != nil {
		t.Fatal(err)
	}
	_, _, err = scRender(t, append(scPodArgs, "--out", path)...)
	want := "sentinel.conf " + path + ` (--out, REDIS_HA_SENTINEL_CONF) cannot be merged: line 4 "sentinel monitor othermaster 127.0.20.2 6390": expected sentinel monitor <master-name> <host> <port> <quorum>, got 3 arguments after "sentinel monitor"; fix or delete that line (redis-sentinel would refuse it too), or move the file away to start from a fresh render, which loses Sentinel's epochs and known peers; the file was left unchanged`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(orig, after) {
		t.Errorf("the file changed:\n%s", after)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want only sentinel.conf (no temp files left)", len(entries))
	}
}

func TestSentinelconfRenderMergesOut(t *testing.T) {
	scClearEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "sentinel.conf")
	args := append(scPodArgs, "--out", path)
	if _, _, err := scRender(t, args...); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600: it may hold the password", st.Mode().Perm())
	}
	// Sentinel appends its state; a second render keeps it.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	state := "\n# Generated by CONFIG REWRITE\nsentinel config-epoch mymaster 4\nsentinel current-epoch 4\n" +
		"sentinel known-sentinel mymaster redis-2.redis-headless.prod.svc.cluster.local 26379 " + sentinelconf.MyID("prod", "redis-2") + "\n" +
		"sentinel known-sentinel mymaster redis-3.redis-headless.prod.svc.cluster.local 26379 " + sentinelconf.MyID("prod", "redis-3") + "\n"
	if _, err := f.WriteString(state); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, logs, err := scRender(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fresh, _, _ := scRender(t, scPodArgs...)
	want := fresh + "\n# Generated by CONFIG REWRITE\nsentinel config-epoch mymaster 4\nsentinel current-epoch 4\n" +
		"sentinel known-sentinel mymaster redis-2.redis-headless.prod.svc.cluster.local 26379 " + sentinelconf.MyID("prod", "redis-2") + "\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("merged file (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs, `"dropped_sentinels":["redis-3.redis-headless.prod.svc.cluster.local:26379 `+sentinelconf.MyID("prod", "redis-3")+`"]`) {
		t.Errorf("the log does not name the dropped Sentinel:\n%s", logs)
	}
}

// An unknown sentinel directive in --out is kept and logged once at warn
// level by name and line; no password reaches the log, neither the file's
// old ones nor the new one, nor the unknown line's value.
func TestSentinelconfRenderWarnsUnknownDirective(t *testing.T) {
	scClearEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "sentinel.conf")
	old := "port 26379\nrequirepass s3cr3tReq\nsentinel monitor mymaster 10.0.0.9 6379 2\nsentinel auth-pass mymaster s3cr3tAuth\nsentinel future-auth-pass s3cr3tFuture\n"
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("n3wPassw0rd"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, logs, err := scRender(t, append(scPodArgs, "--out", path, "--password-file", pwFile)...)
	if err != nil {
		t.Fatal(err)
	}
	var warns []string
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		if strings.Contains(l, `"level":"warn"`) {
			warns = append(warns, l)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], `"directive":"sentinel future-auth-pass"`) || !strings.Contains(warns[0], `"line":5`) {
		t.Errorf("want one warn line naming directive sentinel future-auth-pass on line 5, got %d:\n%s", len(warns), logs)
	}
	for _, s := range []string{"s3cr3tReq", "s3cr3tAuth", "s3cr3tFuture", "n3wPassw0rd"} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the secret %q:\n%s", s, logs)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "\nsentinel future-auth-pass s3cr3tFuture\n") {
		t.Errorf("the unknown directive was not kept:\n%s", got)
	}
}
