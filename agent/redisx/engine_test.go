package redisx

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The INFO server replies are the first lines of the real servers' (the
// e2e images' binaries, run on loopback), with Valkey's redis_version 7.2.4
// that must not be taken for the engine's version.
func TestEngineOf(t *testing.T) {
	cases := map[string]struct {
		reason  string
		info    string
		want    Engine
		wantErr string
	}{
		"redis 7.0.15": {
			reason: "Redis has no server_name: redis_version is its version",
			info:   "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:ae4d7c971a948f0\r\nredis_mode:standalone\r\n",
			want:   Engine{"redis", "7.0.15"},
		},
		"redis 8.0.2": {
			reason: "Redis 8 still has no server_name",
			info:   "# Server\r\nredis_version:8.0.2\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:b843bbd074c0e1da\r\nredis_mode:standalone\r\n",
			want:   Engine{"redis", "8.0.2"},
		},
		"valkey 8.0.1": {
			reason: "redis_version 7.2.4 is Valkey's compatibility value, valkey_version its own",
			info:   "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:39f7c371e0a96e3d\r\nserver_mode:standalone\r\n",
			want:   Engine{"valkey", "8.0.1"},
		},
		"valkey 8.1.1 sentinel": {
			reason: "a Sentinel's INFO server names the engine the same way",
			info:   "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\nvalkey_release_stage:ga\r\nredis_git_sha1:00000000\r\nserver_mode:sentinel\r\n",
			want:   Engine{"valkey", "8.1.1"},
		},
		"valkey version first": {
			reason: "field order does not matter",
			info:   "valkey_version:9.0.0\nserver_name:valkey\nredis_version:7.2.4\n",
			want:   Engine{"valkey", "9.0.0"},
		},
		"valkey without its version": {
			reason:  "never fall back to redis_version for an engine that names itself",
			info:    "redis_version:7.2.4\nserver_name:valkey\n",
			wantErr: `INFO server says server_name:valkey but has no valkey_version field; redis_version ("7.2.4") is not this engine's version`,
		},
		"not INFO server": {
			reason:  "INFO replication has no version at all",
			info:    "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n",
			wantErr: "INFO server has neither server_name nor redis_version: the reply is not INFO server of a Redis or Valkey server",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := EngineOf(ParseInfo(tc.info))
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tc.wantErr, gotErr); diff != "" {
				t.Fatalf("%s: error (-want +got):\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: engine (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
