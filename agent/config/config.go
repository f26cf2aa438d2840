package config

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
)

// Mode names the HA topology a StatefulSet runs.
const (
	ModeSentinel = "sentinel"
	ModeCluster  = "cluster"
)

// Identity is who this pod is. Kubernetes hands it in through the downward
// API; outside a pod (tests, status from a workstation) it comes from flags.
type Identity struct {
	PodName     string `name:"pod-name" env:"POD_NAME" help:"This pod's name (downward API metadata.name)."`
	Namespace   string `name:"namespace" env:"POD_NAMESPACE" default:"default" help:"Namespace of the StatefulSet (downward API metadata.namespace)."`
	PodIP       string `name:"pod-ip" env:"POD_IP" help:"This pod's IP (downward API status.podIP)."`
	StatefulSet string `name:"statefulset" env:"REDIS_HA_STATEFULSET" help:"StatefulSet name; default: the pod name without its ordinal."`
	Service     string `name:"headless-service" env:"REDIS_HA_HEADLESS_SERVICE" help:"Headless Service that gives pods DNS names; default: <statefulset>-headless."`
	Domain      string `name:"cluster-domain" env:"REDIS_HA_CLUSTER_DOMAIN" default:"cluster.local" help:"Kubernetes cluster DNS domain."`
	// Zone is the pod's node's zone. The manifests fill it from the pod's
	// own topology.kubernetes.io/zone label, which the API server copies
	// from the node at scheduling (PodTopologyLabelsAdmission: alpha in
	// Kubernetes 1.33, beta from 1.35); no Node RBAC is needed.
	Zone string `name:"availability-zone" env:"REDIS_HA_AVAILABILITY_ZONE" help:"This pod's availability zone, announced by Valkey 8+ (CONFIG SET availability-zone) so clients can prefer a replica in their own zone; empty: none. The manifests set it from the pod label topology.kubernetes.io/zone (downward API)."`
}

// Config is every setting of init and run. Each field is a flag with an
// environment variable and a default, so a manifest can set any of them.
type Config struct {
	Identity `embed:""`

	Kubeconfig string `name:"kubeconfig" env:"KUBECONFIG" help:"kubeconfig file for running outside a pod; empty uses the pod's service account."`
	Version    string `kong:"-"`

	Mode     string `name:"mode" env:"REDIS_HA_MODE" enum:"sentinel,cluster" default:"sentinel" help:"HA topology: sentinel (1 master, N replicas, Sentinels) or cluster (Redis Cluster)."`
	Replicas int    `name:"replicas" env:"REDIS_HA_REPLICAS" default:"0" help:"Expected number of pods; 0 reads spec.replicas of the StatefulSet."`

	RedisPort            int    `name:"redis-port" env:"REDIS_HA_REDIS_PORT" default:"6379" help:"Port redis-server listens on."`
	SentinelPort         int    `name:"sentinel-port" env:"REDIS_HA_SENTINEL_PORT" default:"26379" help:"Port redis-sentinel listens on (sentinel mode)."`
	PasswordFile         string `name:"password-file" env:"REDIS_HA_PASSWORD_FILE" help:"File holding the Redis password (a Secret volume); empty means no auth. Watched for changes."`
	ExporterPasswordFile string `name:"exporter-password-file" env:"REDIS_HA_EXPORTER_PASSWORD_FILE" help:"Where to write redis_exporter's password file (JSON: localhost address to password) from --password-file, rewritten when the password changes, for a redis_exporter beside redis-server (components/redis-exporter); empty: none."`
	// PasswordRotationGrace is only for clients the agent does not control.
	PasswordRotationGrace time.Duration `name:"password-rotation-grace" env:"REDIS_HA_PASSWORD_ROTATION_GRACE" default:"10s" help:"After a password change, how long the old password is still accepted once every pod uses the new one, for applications that read the Secret later (at most 1h)."`

	// ACL users: README, "ACL users". Every user the agent manages logs
	// in with --password-file's password, so one rotation covers them.
	AgentUser          string `name:"agent-user" env:"REDIS_HA_AGENT_USER" help:"ACL user the agent's own clients log in as, on every redis-server and Sentinel, with the --password-file password; the agent defines it with only the commands it needs (README, ACL users). Empty: the default user."`
	ReplicationUser    string `name:"replication-user" env:"REDIS_HA_REPLICATION_USER" help:"ACL user replicas log in to their master as (masteruser), with the --password-file password; the agent defines it with PSYNC, REPLCONF and PING only. Empty: the default user."`
	SentinelAuthUser   string `name:"sentinel-auth-user" env:"REDIS_HA_SENTINEL_AUTH_USER" help:"Sentinel mode: ACL user Sentinel logs in as, to redis-servers (sentinel auth-user) and to the other Sentinels (sentinel sentinel-user), with the --password-file password; the agent defines it with the commands Sentinel sends. Empty: the default user."`
	ACLFile            string `name:"acl-file" env:"REDIS_HA_ACL_FILE" help:"File (a Secret volume) of application users in Redis ACL file syntax (user <name> <rules...> per line); the agent defines them on every redis-server, at init in --redis-conf-include and at run time with ACL SETUSER when the file changes (README, ACL users). Empty: none."`
	DefineUsersOnly    bool   `name:"define-users-only" env:"REDIS_HA_DEFINE_USERS_ONLY" help:"Define the ACL users of --agent-user, --replication-user and --sentinel-auth-user on every server, but keep logging in as the default user: the first of the steps that turn ACL users on in a running deployment (README, ACL users)."`
	DisableDefaultUser bool   `name:"disable-default-user" env:"REDIS_HA_DISABLE_DEFAULT_USER" help:"Turn every redis-server's default user off (user default off, no requirepass): every login names a user. Needs --agent-user, --replication-user and, in sentinel mode, --sentinel-auth-user. Sentinels keep their default user (clients ask them where the master is)."`

	TLS secrets.TLSSettings `embed:""`

	External External `embed:""`

	DataDir          string `name:"data-dir" env:"REDIS_HA_DATA_DIR" default:"/data" help:"Redis data directory (the PVC)."`
	RedisConfInclude string `name:"redis-conf-include" env:"REDIS_HA_REDIS_CONF_INCLUDE" default:"/data/conf/redis-ha.conf" help:"redis.conf include the agent writes (replicaof, announce, auth); include it from your redis.conf."`
	SentinelConf     string `name:"sentinel-conf" env:"REDIS_HA_SENTINEL_CONF" default:"/data/conf/sentinel.conf" help:"sentinel.conf the agent renders and merges; must be writable by redis-sentinel."`
	NodesConf        string `name:"nodes-conf" env:"REDIS_HA_NODES_CONF" default:"/data/nodes.conf" help:"Redis Cluster nodes.conf (cluster-config-file) rewritten at init."`

	MasterName         string        `name:"master-name" env:"REDIS_HA_MASTER_NAME" default:"mymaster" help:"Sentinel master name."`
	Quorum             int           `name:"quorum" env:"REDIS_HA_QUORUM" default:"0" help:"Sentinel quorum; 0 means a majority of the expected pods."`
	DownAfter          time.Duration `name:"down-after" env:"REDIS_HA_DOWN_AFTER" default:"5s" help:"Sentinel down-after-milliseconds."`
	FailoverTimeout    time.Duration `name:"failover-timeout" env:"REDIS_HA_FAILOVER_TIMEOUT" default:"60s" help:"Sentinel failover-timeout."`
	MinReplicasToWrite int           `name:"min-replicas-to-write" env:"REDIS_HA_MIN_REPLICAS_TO_WRITE" default:"-1" help:"Replicas that must have acknowledged a master within --min-replicas-max-lag for it to accept writes (redis.conf min-replicas-to-write): a master cut off from its replicas refuses writes before Sentinel can promote another pod. -1: 1 with more than one pod, 0 for a single pod; 0 turns the fence off."`
	MinReplicasMaxLag  int           `name:"min-replicas-max-lag" env:"REDIS_HA_MIN_REPLICAS_MAX_LAG" default:"0" help:"Seconds a replica's last acknowledgement counts for --min-replicas-to-write (redis.conf min-replicas-max-lag); 0 derives the largest safe value, the whole seconds below --down-after minus 2s (2 for 5s). A longer one is refused."`

	LeaseName     string        `name:"lease-name" env:"REDIS_HA_LEASE_NAME" help:"coordination.k8s.io Lease name; default: the StatefulSet name."`
	LeaseDuration time.Duration `name:"lease-duration" env:"REDIS_HA_LEASE_DURATION" default:"15s" help:"How long a Lease holder is trusted without renewing (cluster mode's coordinator Lease: 4 times each Lease timing)."`
	RenewDeadline time.Duration `name:"renew-deadline" env:"REDIS_HA_RENEW_DEADLINE" default:"10s" help:"A holder that cannot renew within this fences itself (must be shorter than --lease-duration)."`
	RetryPeriod   time.Duration `name:"retry-period" env:"REDIS_HA_RETRY_PERIOD" default:"2s" help:"Interval between Lease attempts and a master's reconcile passes; a sentinel-mode master writes its Lease every third of --lease-duration (at most half of --renew-deadline)."`
	RoleLabel     string        `name:"role-label" env:"REDIS_HA_ROLE_LABEL" default:"redis-ha-agent/role" help:"Pod label key carrying master/replica, selected by the -master and -replicas Services."`

	HTTPAddr          string        `name:"http-addr" env:"REDIS_HA_HTTP_ADDR" default:":8080" help:"Address of the probe, status, metrics and preStop HTTP server."`
	ResyncInterval    time.Duration `name:"resync-interval" env:"REDIS_HA_RESYNC_INTERVAL" default:"10s" help:"Period of the full reconcile pass that backs up event-driven passes."`
	SwitchoverTimeout time.Duration `name:"switchover-timeout" env:"REDIS_HA_SWITCHOVER_TIMEOUT" default:"30s" help:"Longest a preStop switchover may take; keep under terminationGracePeriodSeconds."`
	ElectionWait      time.Duration `name:"election-wait" env:"REDIS_HA_ELECTION_WAIT" default:"30s" help:"Sentinel mode, cold start (no Sentinel majority names a master): how long the election waits for every pod to report its data before a majority elects without the missing ones. A missing pod may hold the newest data (the last master, its volume slow to re-attach): raise this where volumes attach slowly; 0 waits for every pod without limit."`
	InitTimeout       time.Duration `name:"init-timeout" env:"REDIS_HA_INIT_TIMEOUT" default:"60s" help:"Longest init waits for its own DNS name and peers."`

	ClusterReplicas int    `name:"cluster-replicas" env:"REDIS_HA_CLUSTER_REPLICAS" default:"1" help:"Replicas per master when the cluster is created (cluster mode)."`
	ScaleOutAs      string `name:"scale-out-as" env:"REDIS_HA_SCALE_OUT_AS" enum:"replica,master" default:"replica" help:"How pods added after creation join: as replicas of the master with the fewest, or as masters with slots moved to them."`
}

var ordinalSuffix = regexp.MustCompile(`^(.+)-(\d+)$`)

// Validate checks the settings and fills the defaults derived from others.
// Errors name the flag, its environment variable, the value and the fix.
func (c *Config) Validate() error {
	if c.PodName == "" {
		return fmt.Errorf("--pod-name (POD_NAME) is empty: set it from the downward API (fieldRef metadata.name)")
	}
	m := ordinalSuffix.FindStringSubmatch(c.PodName)
	if c.StatefulSet == "" {
		if m == nil {
			return fmt.Errorf("--pod-name (POD_NAME) %q has no -<ordinal> suffix: run in a StatefulSet pod or set --statefulset (REDIS_HA_STATEFULSET)", c.PodName)
		}
		c.StatefulSet = m[1]
	}
	if !strings.HasPrefix(c.PodName, c.StatefulSet+"-") {
		return fmt.Errorf("--pod-name (POD_NAME) %q is not a pod of --statefulset (REDIS_HA_STATEFULSET) %q: names must be <statefulset>-<ordinal>", c.PodName, c.StatefulSet)
	}
	if _, err := strconv.Atoi(strings.TrimPrefix(c.PodName, c.StatefulSet+"-")); err != nil {
		return fmt.Errorf("--pod-name (POD_NAME) %q has no numeric ordinal after %q", c.PodName, c.StatefulSet+"-")
	}
	if c.Service == "" {
		c.Service = c.StatefulSet + "-headless"
	}
	if c.LeaseName == "" {
		c.LeaseName = c.StatefulSet
	}
	if c.PodIP != "" && net.ParseIP(c.PodIP) == nil {
		return fmt.Errorf("--pod-ip (POD_IP) %q is not an IP address: set it from the downward API (fieldRef status.podIP)", c.PodIP)
	}
	if c.Mode == ModeCluster && c.PodIP == "" {
		return fmt.Errorf("--pod-ip (POD_IP) is empty: cluster mode writes it into nodes.conf; set it from the downward API (fieldRef status.podIP)")
	}
	if c.PasswordRotationGrace < 0 || c.PasswordRotationGrace > time.Hour {
		return fmt.Errorf("--password-rotation-grace (REDIS_HA_PASSWORD_ROTATION_GRACE) %s is out of range: give 0 to 1h; an old password accepted longer is a leaked one kept alive", c.PasswordRotationGrace)
	}
	if c.Replicas < 0 {
		return fmt.Errorf("--replicas (REDIS_HA_REPLICAS) %d is negative: give the pod count, or 0 to read it from the StatefulSet", c.Replicas)
	}
	if c.RenewDeadline >= c.LeaseDuration {
		return fmt.Errorf("--renew-deadline (REDIS_HA_RENEW_DEADLINE) %s must be shorter than --lease-duration (REDIS_HA_LEASE_DURATION) %s, so a master fences itself before its Lease can pass to another pod", c.RenewDeadline, c.LeaseDuration)
	}
	if c.ElectionWait < 0 {
		return fmt.Errorf("--election-wait (REDIS_HA_ELECTION_WAIT) %s is negative: give a duration such as 30s, or 0 to wait for every pod without limit", c.ElectionWait)
	}
	if c.RetryPeriod <= 0 || c.RetryPeriod >= c.RenewDeadline {
		return fmt.Errorf("--retry-period (REDIS_HA_RETRY_PERIOD) %s must be above 0 and shorter than --renew-deadline %s", c.RetryPeriod, c.RenewDeadline)
	}
	// A master notices a missed deadline at its next pass, at most one
	// retry period late; peers take its Lease only after the duration.
	if c.RenewDeadline+c.RetryPeriod >= c.LeaseDuration {
		return fmt.Errorf("--renew-deadline %s plus --retry-period %s must be shorter than --lease-duration (REDIS_HA_LEASE_DURATION) %s: a master fences at most one retry period after its deadline, and that must be before its Lease can pass to another pod", c.RenewDeadline, c.RetryPeriod, c.LeaseDuration)
	}
	if c.DownAfter < 100*time.Millisecond {
		return fmt.Errorf("--down-after (REDIS_HA_DOWN_AFTER) %s is too short for Sentinel: use 100ms or more", c.DownAfter)
	}
	if c.Mode == ModeSentinel {
		if c.MinReplicasToWrite < -1 {
			return fmt.Errorf("--min-replicas-to-write (REDIS_HA_MIN_REPLICAS_TO_WRITE) %d is not a replica count: use -1 (the default: 1 with more than one pod), 0 (no fence) or a count", c.MinReplicasToWrite)
		}
		// The pod count is known only at init (the default -1 fences
		// nothing for a single pod); an explicit fence or max-lag must fit
		// --down-after now.
		if c.MinReplicasMaxLag < 0 || c.MinReplicasToWrite > 0 || (c.MinReplicasToWrite < 0 && c.MinReplicasMaxLag > 0) {
			if err := checkFenceTiming(c.MinReplicasMaxLag, c.DownAfter); err != nil {
				return err
			}
		}
	}
	for name, p := range map[string]int{"--redis-port (REDIS_HA_REDIS_PORT)": c.RedisPort, "--sentinel-port (REDIS_HA_SENTINEL_PORT)": c.SentinelPort} {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("%s %d is not a TCP port", name, p)
		}
	}
	if err := c.validateUsers(); err != nil {
		return err
	}
	if err := c.TLS.Validate(c.RedisPort, c.SentinelPort); err != nil {
		return err
	}
	if err := c.External.validate(c.Mode); err != nil {
		return err
	}
	if c.Mode == ModeCluster && c.ClusterReplicas < 0 {
		return fmt.Errorf("--cluster-replicas (REDIS_HA_CLUSTER_REPLICAS) %d is negative", c.ClusterReplicas)
	}
	return nil
}

// validateUsers checks the ACL user flags (README, "ACL users").
func (c *Config) validateUsers() error {
	for flag, name := range map[string]string{
		"--agent-user (REDIS_HA_AGENT_USER)":                 c.AgentUser,
		"--replication-user (REDIS_HA_REPLICATION_USER)":     c.ReplicationUser,
		"--sentinel-auth-user (REDIS_HA_SENTINEL_AUTH_USER)": c.SentinelAuthUser,
	} {
		if err := acl.ValidName(flag, name); err != nil {
			return err
		}
	}
	if c.Mode == ModeCluster && c.SentinelAuthUser != "" {
		return fmt.Errorf("--sentinel-auth-user (REDIS_HA_SENTINEL_AUTH_USER) %q is for sentinel mode: cluster mode runs no Sentinel; unset it", c.SentinelAuthUser)
	}
	u := c.Users()
	if !u.Enabled() {
		return nil
	}
	if c.PasswordFile == "" {
		return fmt.Errorf("ACL users (--agent-user, --replication-user, --sentinel-auth-user, --disable-default-user) need --password-file (REDIS_HA_PASSWORD_FILE): the users the agent defines log in with its password; mount the Secret and set the flag")
	}
	if c.DefineUsersOnly && c.DisableDefaultUser {
		return fmt.Errorf("--define-users-only (REDIS_HA_DEFINE_USERS_ONLY) keeps every login on the default user, which --disable-default-user (REDIS_HA_DISABLE_DEFAULT_USER) turns off: unset one of them (README, ACL users, has the steps)")
	}
	if c.DisableDefaultUser {
		var missing []string
		if c.AgentUser == "" {
			missing = append(missing, "--agent-user (REDIS_HA_AGENT_USER)")
		}
		if c.ReplicationUser == "" {
			missing = append(missing, "--replication-user (REDIS_HA_REPLICATION_USER)")
		}
		if c.SentinelAuthUser == "" && c.Mode == ModeSentinel {
			missing = append(missing, "--sentinel-auth-user (REDIS_HA_SENTINEL_AUTH_USER)")
		}
		if len(missing) > 0 {
			return fmt.Errorf("--disable-default-user (REDIS_HA_DISABLE_DEFAULT_USER) leaves nobody to log in as for what %s would name: set %s too", strings.Join(missing, ", "), strings.Join(missing, " and "))
		}
	}
	return nil
}

// Users are the ACL users the agent manages (agent/acl).
func (c *Config) Users() acl.Users {
	u := acl.Users{Agent: c.AgentUser, Replication: c.ReplicationUser, DefaultOff: c.DisableDefaultUser, DefineOnly: c.DefineUsersOnly}
	if c.Mode == ModeSentinel {
		u.Sentinel = c.SentinelAuthUser
	}
	return u
}

// Ordinal is this pod's StatefulSet ordinal. Call after Validate.
func (c *Config) Ordinal() int {
	n, _ := strconv.Atoi(strings.TrimPrefix(c.PodName, c.StatefulSet+"-"))
	return n
}

// PodFQDN is the stable DNS name of the pod with the given ordinal, served by
// the headless Service; Redis and Sentinel announce and address peers by it so
// a new pod IP never leaves a stale address behind.
func (c *Config) PodFQDN(ordinal int) string {
	return fmt.Sprintf("%s-%d.%s.%s.svc.%s", c.StatefulSet, ordinal, c.Service, c.Namespace, c.Domain)
}

// PodNameOf is the pod name of an ordinal.
func (c *Config) PodNameOf(ordinal int) string {
	return fmt.Sprintf("%s-%d", c.StatefulSet, ordinal)
}
