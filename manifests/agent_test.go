package manifests

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// cliHelp is what `redis-ha-agent <command> --help` declares: every flag with
// its default and every environment variable it reads.
type cliHelp struct {
	flags map[string]string // name without "--" -> default ("" if none)
	envs  map[string]bool
}

var (
	helpFlag = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9-]+)(?:="?([^"\s]*)"?)?`)
	helpEnv  = regexp.MustCompile(`\(\$([A-Z0-9_]+)\)`)
)

func help(t *testing.T, bin string, command []string) cliHelp {
	t.Helper()
	out, err := exec.Command(bin, append(command, "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s --help: %v\n%s", bin, strings.Join(command, " "), err, out)
	}
	h := cliHelp{flags: map[string]string{}, envs: map[string]bool{}}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if m := helpFlag.FindStringSubmatch(sc.Text()); m != nil {
			h.flags[m[1]] = m[2]
		}
		for _, m := range helpEnv.FindAllStringSubmatch(sc.Text(), -1) {
			h.envs[m[1]] = true
		}
	}
	if len(h.envs) == 0 {
		t.Fatalf("%s %s --help lists no environment variables: has the help format changed?\n%s", bin, strings.Join(command, " "), out)
	}
	return h
}

// subcommand is the agent command a container runs: the words after the
// binary up to the first flag.
func subcommand(c *corev1.Container) []string {
	var sub []string
	for _, a := range append(c.Command[1:], c.Args...) {
		if strings.HasPrefix(a, "-") {
			break
		}
		sub = append(sub, a)
	}
	return sub
}

// setting is the value an agent container runs with for a flag: its env var
// when the manifest sets one, else the flag in the command, else the
// binary's default.
func setting(c *corev1.Container, h cliHelp, flag, env string) string {
	for _, e := range c.Env {
		if e.Name == env && e.ValueFrom == nil {
			return e.Value
		}
	}
	args := append(c.Command[1:], c.Args...)
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+flag+"="); ok {
			return v
		}
		if a == "--"+flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return h.flags[flag]
}

func findContainer(cs []corev1.Container, name string) *corev1.Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// TestAgent checks the agent containers of every build against the binary
// the Dockerfile builds (one build shared by the subtests).
func TestAgent(t *testing.T) {
	bin := agentBinary(t, "test")
	t.Run("FlagsExist", func(t *testing.T) { testAgentFlagsExist(t, bin) })
	t.Run("Containers", func(t *testing.T) { testAgentContainers(t, bin) })
	t.Run("ConfigPathsAgree", func(t *testing.T) { testConfigPathsAgree(t, bin) })
}

// testAgentFlagsExist checks every environment variable and flag the
// manifests give an agent container against the binary's own CLI, and the
// downward-API identity variables against the fields they must come from.
func testAgentFlagsExist(t *testing.T, bin string) {
	identity := map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_IP": "status.podIP"}
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		for _, c := range allContainers(&b.sts.Spec.Template.Spec) {
			if !isAgent(c) {
				continue
			}
			if len(c.EnvFrom) > 0 {
				t.Errorf("container %s uses envFrom: list each variable so it can be checked against the CLI", c.Name)
			}
			sub := subcommand(c)
			h := help(t, bin, sub)
			for _, e := range c.Env {
				if !h.envs[e.Name] {
					t.Errorf("container %s sets %s, which `redis-ha-agent %s` does not read", c.Name, e.Name, strings.Join(sub, " "))
				}
				if want, ok := identity[e.Name]; ok && (e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != want) {
					t.Errorf("container %s: %s must come from the downward API fieldRef %s", c.Name, e.Name, want)
				}
			}
			for _, a := range append(c.Command[1:], c.Args...) {
				name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
				if strings.HasPrefix(a, "--") && a != "--" {
					if _, ok := h.flags[name]; !ok {
						t.Errorf("container %s passes %s, which `redis-ha-agent %s` does not have", c.Name, a, strings.Join(sub, " "))
					}
				}
			}
		}
	})
}

// testAgentContainers checks the init step, the native sidecar, the probes
// (redis-server's liveness its own, never through the agent; readiness and
// preStop on the agent's HTTP port; the agent's own liveness) and that the
// grace period fits the switchover timeout.
func testAgentContainers(t *testing.T, bin string) {
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		spec := &b.sts.Spec.Template.Spec
		initIdx, sidecarIdx := -1, -1
		for i, c := range spec.InitContainers {
			switch c.Name {
			case "agent-init":
				initIdx = i
			case "agent":
				sidecarIdx = i
			}
		}
		for _, c := range spec.Containers {
			if isAgent(&c) {
				t.Errorf("agent container %s is a regular container: it must be an init container (init) or a native sidecar (run)", c.Name)
			}
		}
		if initIdx < 0 {
			t.Fatalf("no init container agent-init")
		}
		ic := &spec.InitContainers[initIdx]
		if got := strings.Join(subcommand(ic), " "); got != l.init {
			t.Errorf("agent-init runs %q, want %q", got, l.init)
		}
		if ic.RestartPolicy != nil {
			t.Errorf("agent-init has restartPolicy %s: it must run to completion before Redis starts", *ic.RestartPolicy)
		}
		if !l.sidecar {
			if sidecarIdx >= 0 {
				t.Errorf("unexpected sidecar agent")
			}
			return
		}
		if sidecarIdx < 0 {
			t.Fatalf("no native sidecar `agent` in initContainers")
		}
		sc := &spec.InitContainers[sidecarIdx]
		if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("agent has restartPolicy %v, want Always (native sidecar: outlives the main containers' preStop)", sc.RestartPolicy)
		}
		if sidecarIdx < initIdx {
			t.Errorf("sidecar agent (index %d) comes before agent-init (index %d): init containers start in order", sidecarIdx, initIdx)
		}
		if got := strings.Join(subcommand(sc), " "); got != "run" {
			t.Errorf("sidecar runs %q, want run", got)
		}
		h := help(t, bin, []string{"run"})
		if got := setting(sc, h, "mode", "REDIS_HA_MODE"); got != l.mode {
			t.Errorf("sidecar mode %q, want %q", got, l.mode)
		}
		if l.init == "init" {
			if got := setting(ic, help(t, bin, []string{"init"}), "mode", "REDIS_HA_MODE"); got != l.mode {
				t.Errorf("agent-init mode %q, want %q", got, l.mode)
			}
		}
		if got := setting(sc, h, "role-label", "REDIS_HA_ROLE_LABEL"); got != roleLabel {
			t.Errorf("sidecar labels pods with %q, but the Services select %q", got, roleLabel)
		}
		_, portStr, err := net.SplitHostPort(setting(sc, h, "http-addr", "REDIS_HA_HTTP_ADDR"))
		if err != nil {
			t.Fatalf("sidecar --http-addr: %v", err)
		}
		var port int32
		fmt.Sscan(portStr, &port)
		declared := false
		for _, p := range sc.Ports {
			declared = declared || p.ContainerPort == port
		}
		if !declared {
			t.Errorf("sidecar does not declare containerPort %d it listens on", port)
		}
		redis := findContainer(spec.Containers, "redis")
		if redis == nil {
			t.Fatalf("no container named redis")
		}
		checkHTTP := func(what string, g *corev1.HTTPGetAction, path string) {
			t.Helper()
			switch {
			case g == nil:
				t.Errorf("redis %s is not an httpGet to the agent", what)
			case g.Path != path || g.Port != intstr.FromInt32(port) || g.Host != "":
				t.Errorf("redis %s is httpGet %s:%s on host %q, want %s on port %d of the pod IP", what, g.Path, g.Port.String(), g.Host, path, port)
			}
		}
		probe := func(p *corev1.Probe) *corev1.HTTPGetAction {
			if p == nil {
				return nil
			}
			return p.HTTPGet
		}
		checkHTTP("readinessProbe", probe(redis.ReadinessProbe), "/readyz")
		// No container's life may depend on the agent: a frozen, crash-
		// looping or restarting agent must not get redis-server (or
		// Sentinel) killed. So no liveness or startup probe but the agent's
		// own goes to the agent's port.
		for _, c := range allContainers(spec) {
			if c.Name == sc.Name {
				continue
			}
			for what, p := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe} {
				if kind, target := probeTarget(c, p); target == port {
					t.Errorf("%s's %s is a %s to port %d, the agent's: the kubelet would restart %s whenever the agent is down", c.Name, what, kind, port, c.Name)
				}
			}
		}
		// redis-server answers its own: a TCP connect to the port it serves,
		// the agent's --redis-port (the plaintext port, or the TLS port that
		// components/tls opens on it), which works without a password or a
		// TLS handshake and while it loads its data.
		var redisPort int32
		fmt.Sscan(setting(sc, h, "redis-port", "REDIS_HA_REDIS_PORT"), &redisPort)
		for what, p := range map[string]*corev1.Probe{"livenessProbe": redis.LivenessProbe, "startupProbe": redis.StartupProbe} {
			if kind, target := probeTarget(redis, p); kind != "tcpSocket" || target != redisPort || p.TCPSocket.Host != "" {
				t.Errorf("redis %s is a %s to port %d, want a tcpSocket to redis-server's own port %d (the agent's --redis-port) on the pod IP", what, kind, target, redisPort)
			}
		}
		// The agent has its own liveness, on /healthz (its HTTP server and
		// reconcile loop, nothing it reaches), and no startupProbe, which
		// would hold back redis-server's start until it passed.
		switch g := probe(sc.LivenessProbe); {
		case sc.LivenessProbe == nil:
			t.Errorf("the agent has no livenessProbe: a frozen or deadlocked agent would never be restarted")
		case g == nil || g.Path != "/healthz" || g.Port != intstr.FromInt32(port) || g.Host != "":
			kind, target := probeTarget(sc, sc.LivenessProbe)
			t.Errorf("the agent's livenessProbe is a %s to port %d (%+v), want httpGet /healthz on its own port %d of the pod IP", kind, target, g, port)
		}
		if sc.StartupProbe != nil {
			t.Errorf("the agent has a startupProbe: the kubelet starts redis-server only after it passes, so the agent would gate redis-server's start")
		}
		if redis.Lifecycle == nil || redis.Lifecycle.PreStop == nil {
			t.Errorf("redis has no preStop hook: a deleted master would not hand over")
		} else {
			checkHTTP("preStop", redis.Lifecycle.PreStop.HTTPGet, "/prestop")
		}
		// One switchover per pod: kubelet runs all preStop hooks at once, and
		// a second /prestop would start a second, concurrent switchover.
		for _, c := range allContainers(spec) {
			if c.Name != "redis" && c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
				t.Errorf("container %s has a preStop hook too: only redis may call /prestop", c.Name)
			}
		}
		if l.mode == "sentinel" {
			// The switchover's SENTINEL FAILOVER is run by this pod's
			// Sentinel: as a native sidecar it is stopped only after redis
			// (and its preStop) has exited.
			s := findContainer(spec.InitContainers, "sentinel")
			switch {
			case s == nil:
				t.Errorf("no native sidecar sentinel in initContainers: as a main container it would be stopped during the switchover")
			case s.RestartPolicy == nil || *s.RestartPolicy != corev1.ContainerRestartPolicyAlways:
				t.Errorf("sentinel init container has restartPolicy %v, want Always (native sidecar)", s.RestartPolicy)
			case findIndex(spec.InitContainers, "sentinel") < initIdx:
				t.Errorf("sentinel starts before agent-init has rendered its sentinel.conf")
			}
		}
		timeout, err := time.ParseDuration(setting(sc, h, "switchover-timeout", "REDIS_HA_SWITCHOVER_TIMEOUT"))
		if err != nil {
			t.Fatalf("sidecar --switchover-timeout: %v", err)
		}
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if spec.TerminationGracePeriodSeconds != nil {
			grace = *spec.TerminationGracePeriodSeconds
		}
		if time.Duration(grace)*time.Second < timeout+10*time.Second {
			t.Errorf("terminationGracePeriodSeconds %d leaves no room after --switchover-timeout %s: want at least 10s more for redis-server to stop", grace, timeout)
		}
	})
}

// probeTarget is the kind of a probe's handler and the port it connects to
// on the pod, a named port resolved against the container's ports (0 for
// exec, or no probe).
func probeTarget(c *corev1.Container, p *corev1.Probe) (kind string, port int32) {
	if p == nil {
		return "no probe", 0
	}
	var target intstr.IntOrString
	switch {
	case p.HTTPGet != nil:
		kind, target = "httpGet", p.HTTPGet.Port
	case p.TCPSocket != nil:
		kind, target = "tcpSocket", p.TCPSocket.Port
	case p.GRPC != nil:
		return "grpc", p.GRPC.Port
	default:
		return "exec", 0
	}
	if target.Type == intstr.Int {
		return kind, target.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == target.StrVal {
			return kind, cp.ContainerPort
		}
	}
	return kind + " to an undeclared port name " + target.StrVal, 0
}

// lastDirective is a key of redisConf's result that cannot be a directive.
const lastDirective = " last"

// redisConf parses the directives of a redis.conf (last one wins, as in
// Redis) and records the name of the last one under lastDirective.
func redisConf(src string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(src, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, _ := strings.Cut(l, " ")
		m[strings.ToLower(k)] = strings.TrimSpace(v)
		m[lastDirective] = strings.ToLower(k)
	}
	return m
}

// mountedConfigMap returns the ConfigMap a container mounts at path.
func mountedConfigMap(t *testing.T, b *built, c *corev1.Container, path string) *corev1.ConfigMap {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath != path {
			continue
		}
		for _, v := range b.sts.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				if cm := b.configMaps[v.ConfigMap.Name]; cm != nil {
					return cm
				}
				t.Fatalf("volume %s refers to ConfigMap %s, which is not in the build", v.Name, v.ConfigMap.Name)
			}
		}
	}
	t.Fatalf("container %s mounts no ConfigMap at %s", c.Name, path)
	return nil
}

func mountedAt(c *corev1.Container, volume, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume && m.MountPath == path && !m.ReadOnly {
			return true
		}
	}
	return false
}

// testConfigPathsAgree checks that the files the agent writes are the files
// Redis and Sentinel read: the redis.conf include, sentinel.conf and
// nodes.conf, on the shared data volume.
func testConfigPathsAgree(t *testing.T, bin string) {
	forEachBuild(t, func(t *testing.T, b *built, l layout) {
		spec := &b.sts.Spec.Template.Spec
		ic := findContainer(spec.InitContainers, "agent-init")
		redis := findContainer(spec.Containers, "redis")
		if ic == nil || redis == nil {
			t.Fatalf("need containers agent-init and redis")
		}
		h := help(t, bin, subcommand(ic))
		server, sentinel := "redis-server", "redis-sentinel"
		if l.engine == "valkey" {
			server, sentinel = "valkey-server", "valkey-sentinel"
		}
		if len(redis.Command) != 2 || redis.Command[0] != server {
			t.Fatalf("redis command %v, want [%s <redis.conf>]", redis.Command, server)
		}
		confDir, confFile := redis.Command[1][:strings.LastIndex(redis.Command[1], "/")], redis.Command[1][strings.LastIndex(redis.Command[1], "/")+1:]
		cm := mountedConfigMap(t, b, redis, confDir)
		src, ok := cm.Data[confFile]
		if !ok {
			t.Fatalf("ConfigMap %s has no key %s that redis-server is started with", cm.Name, confFile)
		}
		conf := redisConf(src)
		if l.mode == "cluster" {
			if conf["cluster-enabled"] != "yes" {
				t.Errorf("%s: cluster-enabled is %q, want yes", confFile, conf["cluster-enabled"])
			}
			if want := setting(ic, h, "nodes-conf", "REDIS_HA_NODES_CONF"); conf["cluster-config-file"] != want {
				t.Errorf("%s: cluster-config-file %q, but agent-init rewrites %q", confFile, conf["cluster-config-file"], want)
			}
		}
		dataVolume := "data"
		if l.init != "init" {
			// The update-node.sh drop-in writes nodes.conf only.
			if !mountedAt(ic, dataVolume, "/data") || !mountedAt(redis, dataVolume, "/data") {
				t.Errorf("agent-init and redis must both mount volume %s read-write at /data", dataVolume)
			}
			return
		}
		dataDir := setting(ic, h, "data-dir", "REDIS_HA_DATA_DIR")
		if conf["dir"] != dataDir {
			t.Errorf("%s: dir %q, agent --data-dir %q", confFile, conf["dir"], dataDir)
		}
		if want := setting(ic, h, "redis-conf-include", "REDIS_HA_REDIS_CONF_INCLUDE"); conf["include"] != want {
			t.Errorf("%s: include %q, but the agent writes %q; the include must be the last directive so it wins", confFile, conf["include"], want)
		}
		if conf[lastDirective] != "include" {
			t.Errorf("%s: the last directive is %s, want the include, so that what the agent writes wins", confFile, conf[lastDirective])
		}
		if want := setting(ic, h, "redis-port", "REDIS_HA_REDIS_PORT"); conf["port"] != want {
			t.Errorf("%s: port %q, agent --redis-port %q", confFile, conf["port"], want)
		}
		for _, c := range allContainers(spec) {
			if c.Name == exporterContainer {
				continue // it reads the server over TCP, not its files
			}
			if !mountedAt(c, dataVolume, dataDir) {
				t.Errorf("container %s does not mount volume %s read-write at %s", c.Name, dataVolume, dataDir)
			}
		}
		if l.mode == "sentinel" {
			s := findContainer(spec.InitContainers, "sentinel")
			want := []string{sentinel, setting(ic, h, "sentinel-conf", "REDIS_HA_SENTINEL_CONF")}
			if s == nil || strings.Join(s.Command, " ") != strings.Join(want, " ") {
				t.Errorf("sentinel container command %v, want %v (the file agent-init renders)", s, want)
			}
		}
	})
}

func findIndex(cs []corev1.Container, name string) int {
	for i := range cs {
		if cs[i].Name == name {
			return i
		}
	}
	return -1
}
