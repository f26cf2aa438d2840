package config

import (
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		Identity: Identity{PodName: "redis-1", Namespace: "ns"}, Mode: ModeSentinel,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		DownAfter: 5 * time.Second, RedisPort: 6379, SentinelPort: 26379,
	}
}

// TestConfigValidate: each bad setting is refused with an error that names
// the flag (and its variable) and the value; the defaults derived from the
// pod name are filled in.
func TestConfigValidate(t *testing.T) {
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if c.StatefulSet != "redis" || c.Service != "redis-headless" || c.LeaseName != "redis" {
		t.Errorf("derived defaults: statefulset %q service %q lease %q; want redis, redis-headless, redis", c.StatefulSet, c.Service, c.LeaseName)
	}
	cases := map[string]struct {
		mutate func(*Config)
		want   []string
	}{
		"NoPodName":        {func(c *Config) { c.PodName = "" }, []string{"--pod-name (POD_NAME)"}},
		"NoOrdinal":        {func(c *Config) { c.PodName = "redis" }, []string{"--pod-name (POD_NAME)", `"redis"`}},
		"OtherStatefulSet": {func(c *Config) { c.StatefulSet = "cache" }, []string{"--statefulset", `"cache"`}},
		"BadPodIP":         {func(c *Config) { c.PodIP = "10.0.0" }, []string{"--pod-ip (POD_IP)", `"10.0.0"`}},
		"ClusterNoPodIP":   {func(c *Config) { c.Mode = ModeCluster }, []string{"--pod-ip (POD_IP) is empty"}},
		"NegativeReplicas": {func(c *Config) { c.Replicas = -1 }, []string{"--replicas (REDIS_HA_REPLICAS) -1"}},
		"DeadlineNotShorter": {func(c *Config) { c.RenewDeadline = 15 * time.Second },
			[]string{"--renew-deadline (REDIS_HA_RENEW_DEADLINE) 15s", "--lease-duration"}},
		"RetryNotShorter": {func(c *Config) { c.RetryPeriod = 10 * time.Second },
			[]string{"--retry-period (REDIS_HA_RETRY_PERIOD) 10s"}},
		"DeadlinePlusRetryReachesDuration": {func(c *Config) { c.RenewDeadline, c.RetryPeriod = 12*time.Second, 3*time.Second },
			[]string{"--renew-deadline 12s plus --retry-period 3s", "--lease-duration (REDIS_HA_LEASE_DURATION) 15s"}},
		"DownAfterTooShort": {func(c *Config) { c.DownAfter = time.Millisecond }, []string{"--down-after (REDIS_HA_DOWN_AFTER) 1ms"}},
		"BadPort":           {func(c *Config) { c.RedisPort = 70000 }, []string{"--redis-port (REDIS_HA_REDIS_PORT) 70000"}},
		"MaxLagReachesDownAfter": {func(c *Config) { c.MinReplicasToWrite, c.MinReplicasMaxLag = -1, 3 },
			[]string{"--min-replicas-max-lag (REDIS_HA_MIN_REPLICAS_MAX_LAG) 3", "--down-after (REDIS_HA_DOWN_AFTER) 5s", "use at most 2"}},
		"ExplicitFenceDownAfterTooShort": {func(c *Config) { c.MinReplicasToWrite, c.DownAfter = 1, 2*time.Second },
			[]string{"--down-after (REDIS_HA_DOWN_AFTER) 2s", "--min-replicas-to-write 0"}},
		"NegativeElectionWait":           {func(c *Config) { c.ElectionWait = -time.Second }, []string{"--election-wait (REDIS_HA_ELECTION_WAIT) -1s", "0 to wait"}},
		"MinReplicasToWriteBelowDefault": {func(c *Config) { c.MinReplicasToWrite = -2 }, []string{"--min-replicas-to-write (REDIS_HA_MIN_REPLICAS_TO_WRITE) -2"}},
		"AgentUserDefault":               {func(c *Config) { c.AgentUser, c.PasswordFile = "default", "/s/pw" }, []string{"--agent-user (REDIS_HA_AGENT_USER)", `"default"`}},
		"UserNameWithSpace":              {func(c *Config) { c.ReplicationUser, c.PasswordFile = "a b", "/s/pw" }, []string{"--replication-user (REDIS_HA_REPLICATION_USER)", `"a b"`}},
		"UsersWithoutPassword":           {func(c *Config) { c.AgentUser = "ha-agent" }, []string{"need --password-file (REDIS_HA_PASSWORD_FILE)"}},
		"DefaultOffWithoutUsers": {func(c *Config) { c.DisableDefaultUser, c.AgentUser, c.PasswordFile = true, "ha-agent", "/s/pw" },
			[]string{"--disable-default-user (REDIS_HA_DISABLE_DEFAULT_USER)", "--replication-user (REDIS_HA_REPLICATION_USER) and --sentinel-auth-user (REDIS_HA_SENTINEL_AUTH_USER)"}},
		"DefineOnlyWithDefaultOff": {func(c *Config) {
			c.DefineUsersOnly, c.DisableDefaultUser, c.AgentUser, c.ReplicationUser, c.SentinelAuthUser, c.PasswordFile = true, true, "a", "r", "s", "/s/pw"
		},
			[]string{"--define-users-only (REDIS_HA_DEFINE_USERS_ONLY)", "--disable-default-user (REDIS_HA_DISABLE_DEFAULT_USER)"}},
		"SentinelUserInClusterMode": {func(c *Config) {
			c.Mode, c.PodIP, c.SentinelAuthUser, c.PasswordFile = ModeCluster, "10.0.0.1", "ha-sentinel", "/s/pw"
		},
			[]string{"--sentinel-auth-user (REDIS_HA_SENTINEL_AUTH_USER)", "cluster mode runs no Sentinel"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate accepted %+v", c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}
