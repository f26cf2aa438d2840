package kubelet

import (
	"reflect"
	"strings"
	"testing"
)

func TestResolveCommand(t *testing.T) {
	r := commandResolver{
		binaries: map[string]string{BinServer: "/usr/bin/redis-server", BinSentinel: "/usr/bin/redis-sentinel", BinCLI: "/usr/bin/redis-cli", BinAgent: "/tmp/agent"},
		inVolume: func(p string) bool { return strings.HasPrefix(p, "/conf/") },
	}
	tests := map[string]struct {
		image         string
		command, args []string
		want          []string
		err           string
	}{
		"redis default":          {image: "redis:7.0", want: []string{"/usr/bin/redis-server"}},
		"redis args only":        {image: "docker.io/library/redis:7.0.15-alpine", args: []string{"/conf/redis.conf"}, want: []string{"/usr/bin/redis-server", "/conf/redis.conf"}},
		"redis option args":      {image: "redis", args: []string{"--port", "6380"}, want: []string{"/usr/bin/redis-server", "--port", "6380"}},
		"redis args command":     {image: "redis:7", args: []string{"redis-sentinel", "/s.conf"}, want: []string{"/usr/bin/redis-sentinel", "/s.conf"}},
		"bitnami abs path":       {image: "bitnami/redis:7.2", command: []string{"/usr/local/bin/redis-server"}, args: []string{"--port", "1"}, want: []string{"/usr/bin/redis-server", "--port", "1"}},
		"registry port":          {image: "localhost:5000/redis:7", command: []string{"redis-cli"}, want: []string{"/usr/bin/redis-cli"}},
		"digest":                 {image: "redis@sha256:abc", want: []string{"/usr/bin/redis-server"}},
		"seed script":            {image: "redis:5.0.5-alpine", command: []string{"/conf/update-node.sh", "redis-server", "/conf/redis.conf"}, want: []string{"/conf/update-node.sh", "redis-server", "/conf/redis.conf"}},
		"shell":                  {image: "busybox", command: []string{"sh", "-c", "echo hi"}, want: []string{"/bin/sh", "-c", "echo hi"}},
		"bin sh":                 {image: "redis", command: []string{"/bin/sh", "-c", "x"}, want: []string{"/bin/sh", "-c", "x"}},
		"agent default":          {image: "ghcr.io/x/redis-ha-agent:dev", args: []string{"run"}, want: []string{"/tmp/agent", "run"}},
		"agent command":          {image: "redis-ha-agent:dev", command: []string{"/redis-ha-agent", "init"}, want: []string{"/tmp/agent", "init"}},
		"bitnami sentinel image": {image: "bitnami/redis-sentinel:7.2", command: []string{"redis-sentinel", "/s.conf"}, want: []string{"/usr/bin/redis-sentinel", "/s.conf"}},
		"host tool":              {image: "busybox", command: []string{"sleep", "1"}, want: []string{"sleep", "1"}},
		"redis cmd in other img": {image: "busybox", command: []string{"redis-server"}, err: `image "busybox" command "redis-server" has no host binary`},
		"unknown":                {image: "redis", command: []string{"/usr/local/bin/docker-entrypoint.sh"}, err: "has no host binary"},
		"generic no command":     {image: "nginx", err: "no command and no args"},
	}
	for name, tc := range tests {
		got, err := r.resolve(tc.image, tc.command, tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want containing %q", name, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: resolve = %q, %v; want %q", name, got, err, tc.want)
		}
	}
	if _, err := (commandResolver{binaries: map[string]string{}}).resolve("redis-ha-agent", nil, []string{"run"}); err == nil || !strings.Contains(err.Error(), "Config.Binaries") {
		t.Errorf("missing agent binary: err = %v, want one naming Config.Binaries", err)
	}
}
