package sentinelconf

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

// TestGoldenLoadsInSentinel starts a real redis-sentinel on every merged
// golden file and checks that it runs with the master, epochs and peers
// the file says, so the output is proven loadable by Sentinel itself, also
// when Merge repaired a file Sentinel had broken. Only the dir and logfile
// lines are pointed at a temp dir: they name the generator's deleted one.
func TestGoldenLoadsInSentinel(t *testing.T) {
	proctest.NeedPrograms(t, "redis-sentinel")
	files, err := filepath.Glob("testdata/merge-real-*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no merged golden files: %v", err)
	}
	dirLine := regexp.MustCompile(`(?m)^(dir|logfile) .*$`)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
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
			conf := dirLine.ReplaceAll(golden, []byte(fmt.Sprintf("dir %q\nlogfile %q", dir, "sentinel.log")))
			confPath := filepath.Join(dir, "sentinel.conf")
			if err := os.WriteFile(confPath, conf, 0o600); err != nil {
				t.Fatal(err)
			}
			p := proctest.Start(t, filepath.Join(dir, "sentinel.log"), "redis-sentinel", confPath)
			sc := redis.NewSentinelClient(&redis.Options{Addr: bind + ":" + port, Password: password, MaxRetries: -1})
			t.Cleanup(func() { _ = sc.Close() })
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var masters []any
			err = proctest.Until(ctx, 20*time.Second, func() error {
				select {
				case <-p.Done():
					t.Fatalf("redis-sentinel exited: it refused the file")
				default:
				}
				masters, err = sc.Masters(ctx).Result()
				return err
			})
			if err != nil {
				t.Fatalf("redis-sentinel on %s:%s did not answer: %v", bind, port, err)
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
