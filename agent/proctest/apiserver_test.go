package proctest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// defaults is "<k8s>-coredns-<coredns>" of the build script's defaults.
func defaults(t *testing.T) string {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, buildScript))
	if err != nil {
		t.Fatal(err)
	}
	v := func(name string) string {
		m := regexp.MustCompile(name + `=\$\{` + name + `:-(v[0-9.]+)\}`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s has no default %s", buildScript, name)
		}
		return string(m[1])
	}
	return v("K8S_VERSION") + "-coredns-" + v("COREDNS_VERSION")
}

// TestK8sBinDir: the binaries are looked for where e2e/hack/build-k8s.sh
// puts them under the same environment.
func TestK8sBinDir(t *testing.T) {
	cases := map[string]struct {
		env  map[string]string
		want string
	}{
		"script defaults": {
			env:  map[string]string{"HOME": "/home/u"},
			want: "/home/u/.cache/redis-ha-agent-e2e/k8s-" + defaults(t) + "/bin",
		},
		"XDG_CACHE_HOME": {
			env:  map[string]string{"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg"},
			want: "/xdg/redis-ha-agent-e2e/k8s-" + defaults(t) + "/bin",
		},
		"REDIS_HA_E2E_CACHE wins": {
			env:  map[string]string{"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg", "REDIS_HA_E2E_CACHE": "/ci/cache"},
			want: "/ci/cache/k8s-" + defaults(t) + "/bin",
		},
		"versions": {
			env:  map[string]string{"HOME": "/home/u", "K8S_VERSION": "v1.35.0", "COREDNS_VERSION": "v1.13.0"},
			want: "/home/u/.cache/redis-ha-agent-e2e/k8s-v1.35.0-coredns-v1.13.0/bin",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for _, k := range []string{"HOME", "XDG_CACHE_HOME", "REDIS_HA_E2E_CACHE", "K8S_VERSION", "COREDNS_VERSION"} {
				t.Setenv(k, tc.env[k])
			}
			got, err := K8sBinDir()
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Clean(got) != tc.want {
				t.Errorf("K8sBinDir() = %s, want %s", got, tc.want)
			}
		})
	}
}
