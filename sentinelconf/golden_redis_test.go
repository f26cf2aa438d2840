package sentinelconf

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

// TestGoldenLoadsInSentinel starts a real Sentinel of each engine on every
// merged golden file of its own files and checks that it runs with the
// master, epochs and peers the file says, so the output is proven loadable
// by Sentinel itself, also when Merge repaired a file Sentinel had broken.
// Only the dir and logfile lines are pointed at a temp dir: they name the
// generator's deleted one. Redis 7.0.15 and Valkey 8.0.1 run from the host
// (Debian 12 and bookworm-backports); Redis 8.0.2 and Valkey 8.1.1 need
// trixie's libc, so they run with chroot from their e2e image's root
// filesystem when REDIS_HA_ENGINE_ROOTS names a directory holding them as
// <engine>/ (e.g. redis-8.0.2/, extracted from
// ~/.cache/redis-ha-agent-e2e/images/redis-8.0-*.tar), and are skipped
// otherwise.
func TestGoldenLoadsInSentinel(t *testing.T) {
	files, err := filepath.Glob("testdata/merge-*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no merged golden files: %v", err)
	}
	dirLine := regexp.MustCompile(`(?m)^(dir|logfile) .*$`)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			engine := ""
			for _, e := range engines {
				if strings.HasPrefix(filepath.Base(path), "merge-"+e+"-") {
					engine = e
				}
			}
			if engine == "" {
				t.Fatalf("%s names no engine of %v", path, engines)
			}
			root, bin := engineSentinel(t, engine)
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(golden)
			if err != nil {
				t.Fatal(err)
			}
			var bind, port, password string
			for _, l := range f.Lines {
				switch l.Directive() {
				case "bind":
					bind = l.Args[1]
				case "port":
					port = l.Args[1]
				case "requirepass":
					password = l.Args[1]
				}
			}
			m, monitored := f.Master("mymaster")
			dir := t.TempDir()
			if root != "" {
				dir, err = os.MkdirTemp(filepath.Join(root, "tmp"), "sentinelconf-test.")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = os.RemoveAll(dir) })
			}
			inner := strings.TrimPrefix(dir, root) // the path the Sentinel sees
			conf := dirLine.ReplaceAll(golden, []byte(fmt.Sprintf("dir %q\nlogfile %q", inner, "sentinel.log")))
			confPath := filepath.Join(dir, "sentinel.conf")
			if err := os.WriteFile(confPath, conf, 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{filepath.Join(inner, "sentinel.conf")}
			if root != "" {
				args = append([]string{root, bin}, args...)
				bin = "chroot"
			}
			p := proctest.Start(t, filepath.Join(dir, "sentinel.log"), bin, args...)
			sc := redis.NewSentinelClient(&redis.Options{Addr: bind + ":" + port, Password: password, MaxRetries: -1})
			t.Cleanup(func() { _ = sc.Close() })
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var masters []any
			err = proctest.Until(ctx, 20*time.Second, func() error {
				select {
				case <-p.Done():
					t.Fatalf("%s exited: it refused the file", engine)
				default:
				}
				masters, err = sc.Masters(ctx).Result()
				return err
			})
			if err != nil {
				t.Fatalf("%s Sentinel on %s:%s did not answer: %v", engine, bind, port, err)
			}
			if !monitored {
				if len(masters) != 0 {
					t.Errorf("the file has no monitor, yet SENTINEL MASTERS = %v", masters)
				}
				return
			}
			got, err := sc.Master(ctx, "mymaster").Result()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"ip": m.Addr.Host, "port": strconv.Itoa(m.Addr.Port), "quorum": strconv.Itoa(m.Quorum),
				"config-epoch": strconv.FormatUint(m.ConfigEpoch, 10), "num-other-sentinels": strconv.Itoa(len(m.KnownSentinels)),
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					delete(got, k)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("SENTINEL MASTER mymaster (-file +sentinel):\n%s", diff)
			}
		})
	}
}

// engineSentinel is how to run the Sentinel of engine ("valkey-8.0.1"): a
// root filesystem to chroot into ("" for the host) and the program. It
// fails the test when the host's program is missing or another version,
// or when an engine that only runs from a root filesystem is not in
// REDIS_HA_ENGINE_ROOTS (make engine-roots unpacks them).
func engineSentinel(t *testing.T, engine string) (root, bin string) {
	t.Helper()
	name, version, _ := strings.Cut(engine, "-")
	bin = name + "-sentinel"
	if roots := os.Getenv("REDIS_HA_ENGINE_ROOTS"); roots != "" {
		if dir := filepath.Join(roots, engine); fileExists(filepath.Join(dir, "usr/bin", bin)) {
			root = dir
		}
	}
	var out []byte
	var err error
	switch {
	case root != "":
		out, err = exec.Command("chroot", root, bin, "--version").CombinedOutput()
	case engine == "redis-7.0.15" || engine == "valkey-8.0.1":
		proctest.NeedPrograms(t, bin) // valkey-sentinel: apt-get install -t bookworm-backports valkey-sentinel
		out, err = exec.Command(bin, "--version").CombinedOutput()
	default:
		t.Fatalf("%s runs from its image's root filesystem, and REDIS_HA_ENGINE_ROOTS (%q) has no %s/usr/bin/%s: run `make engine-roots` (make unit sets it), or `cd e2e && go run ./cmd/images rootfs DIR` and set REDIS_HA_ENGINE_ROOTS=DIR", engine, os.Getenv("REDIS_HA_ENGINE_ROOTS"), engine, bin)
	}
	if err != nil || !strings.Contains(string(out), " v="+version+" ") {
		t.Fatalf("%s --version (root %q) = %q, %v: want v=%s, the engine whose files these are", bin, root, out, err, version)
	}
	return root, bin
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
