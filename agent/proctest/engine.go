package proctest

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/metrics"
)

// EngineServer is a real server program on this machine and the engine
// name it reports.
type EngineServer struct{ Bin, Engine string }

// EngineServers are the real servers on this machine: Debian 12's Redis 7.0
// and bookworm-backports' Valkey 8.0, whose INFO says redis_version:7.2.4.
func EngineServers() []EngineServer {
	return []EngineServer{
		{"redis-server", "redis"},
		{"valkey-server", "valkey"},
	}
}

// Engine is what a pass should report: the engine's name and its own
// version.
type Engine struct{ Name, Version string }

// BinVersion is the version `bin --version` prints ("... v=8.0.1 ...").
func BinVersion(t *testing.T, bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	v := regexp.MustCompile(`\bv=([0-9][^ ]*)`).FindSubmatch(out)
	if v == nil {
		t.Fatalf("%s --version printed no v=<version>: %q", bin, out)
	}
	return string(v[1])
}

// StartEngineServer runs bin on ip:6379 with no persistence and extra
// config lines, until the test ends.
func StartEngineServer(t *testing.T, bin, ip string, extra ...string) {
	dir := t.TempDir()
	lines := append([]string{"bind " + ip, "port 6379", "protected-mode no", "dir " + dir, `save ""`, "appendonly no"}, extra...)
	conf := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	Start(t, filepath.Join(dir, "server.log"), bin, conf)
	WaitPing(t, ip+":6379", "", 10*time.Second)
}

// CheckEngine compares /status and /metrics with want; none may carry Valkey's compatibility redis_version.
func CheckEngine(t *testing.T, want Engine, status any, mt *metrics.Metrics) {
	t.Helper()
	body, err := json.Marshal(status)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st["engine"] != want.Name || st["engine_version"] != want.Version {
		t.Errorf("/status: engine=%v engine_version=%v, want %s %s; body %s", st["engine"], st["engine_version"], want.Name, want.Version, body)
	}
	rec := httptest.NewRecorder()
	mt.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var series []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "redis_ha_agent_engine_info{") {
			series = append(series, l)
		}
	}
	wantSeries := fmt.Sprintf(`redis_ha_agent_engine_info{engine=%q,version=%q} 1`, want.Name, want.Version)
	if len(series) != 1 || series[0] != wantSeries {
		t.Errorf("/metrics engine series: got %q, want [%s]", series, wantSeries)
	}
	if want.Name == "valkey" {
		for what, text := range map[string]string{"/status": string(body), "/metrics engine series": strings.Join(series, "\n")} {
			if strings.Contains(text, "7.2.4") {
				t.Errorf("%s carries Valkey's compatibility redis_version 7.2.4: %s", what, text)
			}
		}
	}
}
