package config

import (
	"fmt"
	"net"
	"regexp"
)

// External is how clients outside the Kubernetes cluster reach the pods:
// each pod has its own NodePort Service (components/external-access), at a
// port derived from its ordinal, and announces the node address and that
// port instead of its DNS name, so what Sentinel tells a client is an
// address the client can dial.
//
// The port, not the address, says which pod an announced address is: every
// node forwards a NodePort (externalTrafficPolicy: Cluster), so pods on one
// node share an address, and an address announced before a pod moved to
// another node still reaches it while that node is up.
type External struct {
	Host         string `name:"external-host" env:"REDIS_HA_EXTERNAL_HOST" help:"With --external-redis-port: the address this pod announces to Sentinel and clients (replica-announce-ip, Sentinel announce-ip): a node address (the manifests give the pod's own node, downward API status.hostIP) or a DNS name that resolves to the nodes."`
	RedisPort    int    `name:"external-redis-port" env:"REDIS_HA_EXTERNAL_REDIS_PORT" default:"0" help:"External access: the NodePort of ordinal 0's redis-server; ordinal i announces this plus i (replica-announce-port), and Sentinel hands these addresses to clients. 0 turns external access off: pods announce their DNS names (in-cluster clients only)."`
	SentinelPort int    `name:"external-sentinel-port" env:"REDIS_HA_EXTERNAL_SENTINEL_PORT" default:"0" help:"External access, sentinel mode: the NodePort of ordinal 0's Sentinel; ordinal i announces this plus i (Sentinel announce-port). Required with --external-redis-port in sentinel mode."`
}

// Enabled reports whether the pods announce external addresses.
func (e External) Enabled() bool { return e.RedisPort > 0 }

// RedisPortOf is the external Redis port of an ordinal.
func (e External) RedisPortOf(ordinal int) int { return e.RedisPort + ordinal }

// SentinelPortOf is the external Sentinel port of an ordinal.
func (e External) SentinelPortOf(ordinal int) int { return e.SentinelPort + ordinal }

// RedisOrdinal is the ordinal (below pods) whose external Redis port is
// port; -1 when none, or external access is off.
func (e External) RedisOrdinal(port, pods int) int { return ordinalAt(e.RedisPort, port, pods) }

// SentinelOrdinal is the ordinal (below pods) whose external Sentinel
// port is port; -1 when none, or external access is off.
func (e External) SentinelOrdinal(port, pods int) int { return ordinalAt(e.SentinelPort, port, pods) }

func ordinalAt(base, port, pods int) int {
	if base <= 0 || port < base || port >= base+pods {
		return -1
	}
	return port - base
}

// hostName is a DNS name as redis.conf and sentinel.conf accept it
// unquoted: letters, digits, dots, hyphens.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// ValidHost: h is an IP address or a DNS name.
func ValidHost(h string) bool { return net.ParseIP(h) != nil || hostName.MatchString(h) }

func (e External) validate(mode string) error {
	if e.RedisPort == 0 {
		if e.SentinelPort != 0 {
			return fmt.Errorf("--external-sentinel-port (REDIS_HA_EXTERNAL_SENTINEL_PORT) %d is set without --external-redis-port (REDIS_HA_EXTERNAL_REDIS_PORT): set both for external access, or neither", e.SentinelPort)
		}
		return nil
	}
	if mode == ModeCluster {
		return fmt.Errorf("--external-redis-port (REDIS_HA_EXTERNAL_REDIS_PORT) %d: external access is not supported in cluster mode yet (cluster-announce-ip/-port/-bus-port); unset it, or run sentinel mode", e.RedisPort)
	}
	if e.Host == "" {
		return fmt.Errorf("--external-host (REDIS_HA_EXTERNAL_HOST) is empty while --external-redis-port (REDIS_HA_EXTERNAL_REDIS_PORT) %d turns external access on: set it from the downward API (fieldRef status.hostIP) or to an address of the nodes", e.RedisPort)
	}
	if !ValidHost(e.Host) {
		return fmt.Errorf("--external-host (REDIS_HA_EXTERNAL_HOST) %q is neither an IP address nor a DNS name: give a node address or a name that resolves to the nodes", e.Host)
	}
	for _, p := range []struct {
		flag string
		v    int
	}{{"--external-redis-port (REDIS_HA_EXTERNAL_REDIS_PORT)", e.RedisPort}, {"--external-sentinel-port (REDIS_HA_EXTERNAL_SENTINEL_PORT)", e.SentinelPort}} {
		if p.v < 0 || p.v > 65535 {
			return fmt.Errorf("%s %d is not a TCP port: give the NodePort of ordinal 0 (30000-32767 by default)", p.flag, p.v)
		}
	}
	if mode == ModeSentinel && e.SentinelPort == 0 {
		return fmt.Errorf("--external-sentinel-port (REDIS_HA_EXTERNAL_SENTINEL_PORT) is 0 while --external-redis-port (REDIS_HA_EXTERNAL_REDIS_PORT) %d turns external access on: clients outside ask Sentinel first, so give its NodePort of ordinal 0", e.RedisPort)
	}
	return nil
}

// CheckSpan checks that the external ports of pods ordinals fit: the Redis
// and Sentinel ranges must not overlap, or a Sentinel's address would name
// a pod's redis-server. The pod count is known only at init and run.
func (e External) CheckSpan(pods int) error {
	if !e.Enabled() || e.SentinelPort == 0 {
		return nil
	}
	if e.RedisPort+pods-1 > 65535 || e.SentinelPort+pods-1 > 65535 {
		return fmt.Errorf("external ports of %d pods run past 65535 (--external-redis-port %d, --external-sentinel-port %d): pick lower NodePorts", pods, e.RedisPort, e.SentinelPort)
	}
	if e.RedisPort < e.SentinelPort+pods && e.SentinelPort < e.RedisPort+pods {
		return fmt.Errorf("--external-redis-port (REDIS_HA_EXTERNAL_REDIS_PORT) %d and --external-sentinel-port (REDIS_HA_EXTERNAL_SENTINEL_PORT) %d overlap for %d pods (each pod takes base+ordinal): keep them at least %d apart", e.RedisPort, e.SentinelPort, pods, pods)
	}
	return nil
}
