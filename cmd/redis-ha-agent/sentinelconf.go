package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
	"github.com/redis-ha-agent/redis-ha-agent/agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinelconf"
)

// SentinelconfCmd groups the sentinel.conf tools.
type SentinelconfCmd struct {
	Render SentinelconfRenderCmd `cmd:"" help:"Render sentinel.conf, merged into an existing file that Sentinel rewrote."`
}

// SentinelconfRenderCmd renders sentinel.conf. With --out it merges into the
// file there (keeping Sentinel's epochs and live peers) and replaces it
// atomically; without, it prints a preview with the password masked.
type SentinelconfRenderCmd struct {
	MasterName      string        `name:"master-name" env:"REDIS_HA_MASTER_NAME" default:"mymaster" help:"Sentinel master name."`
	MasterHost      string        `name:"master-host" env:"REDIS_HA_MASTER_HOST" required:"" help:"Current master's pod FQDN (or IP)."`
	MasterPort      int           `name:"master-port" env:"REDIS_HA_MASTER_PORT" default:"6379" help:"Current master's redis-server port."`
	Quorum          int           `name:"quorum" env:"REDIS_HA_QUORUM" default:"2" help:"Sentinels that must agree the master is down: a majority of all Sentinels (2 of 3)."`
	DownAfter       time.Duration `name:"down-after" env:"REDIS_HA_DOWN_AFTER" default:"5s" help:"Sentinel down-after-milliseconds."`
	FailoverTimeout time.Duration `name:"failover-timeout" env:"REDIS_HA_FAILOVER_TIMEOUT" default:"60s" help:"Sentinel failover-timeout."`
	ParallelSyncs   int           `name:"parallel-syncs" env:"REDIS_HA_PARALLEL_SYNCS" default:"1" help:"Replicas resynced at once after a failover."`
	AnnounceHost    string        `name:"announce-host" env:"REDIS_HA_ANNOUNCE_HOST" required:"" help:"This pod's FQDN (or IP), announced to peers and clients."`
	Port            int           `name:"port" env:"REDIS_HA_SENTINEL_PORT" default:"26379" help:"Port redis-sentinel listens on and announces."`
	PodName         string        `name:"pod-name" env:"POD_NAME" required:"" help:"This pod's name; its Sentinel myid is derived from namespace/pod name."`
	Namespace       string        `name:"namespace" env:"POD_NAMESPACE" default:"default" help:"This pod's namespace (part of every myid)."`
	PasswordFile    string        `name:"password-file" env:"REDIS_HA_PASSWORD_FILE" help:"File holding the Redis password (a Secret volume); empty means no auth. Written as auth-pass, requirepass and sentinel-pass."`
	Peers           []string      `name:"peer" env:"REDIS_HA_PEERS" sep:"," placeholder:"[POD=]HOST" help:"A peer pod that exists now (repeatable, or comma-separated in the env var): its FQDN, whose first label is its pod name, or POD=HOST. known-sentinel/known-replica lines for other hosts are dropped."`
	Out             string        `name:"out" env:"REDIS_HA_SENTINEL_CONF" help:"sentinel.conf to merge into and replace atomically; empty prints a preview (password masked) to stdout."`

	TLS secrets.TLSSettings `embed:""`
}

// maskedPassword stands in for the password in a preview, so that running
// render without --out in a pod never puts the password in its log.
const maskedPassword = "<masked>"

func (c *SentinelconfRenderCmd) Run(g *Globals) error {
	p, err := c.params()
	if err != nil {
		return err
	}
	if err := p.Validate(); err != nil { // before the preview masks the password
		return c.paramError(err)
	}
	log := g.Log.With().Str("component", "sentinelconf").Logger()
	if c.Out == "" {
		if p.Password != "" {
			p.Password = maskedPassword
		}
		out, err := sentinelconf.Render(p)
		if err != nil {
			return c.paramError(err)
		}
		_, err = g.Stdout.Write(out)
		return err
	}

	existing, err := os.ReadFile(c.Out)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read --out (REDIS_HA_SENTINEL_CONF) %s to merge into it: %w; make it readable, or point --out elsewhere", c.Out, err)
	}
	out, ch, err := sentinelconf.Merge(existing, p)
	if pe := (*sentinelconf.ParseError)(nil); errors.As(err, &pe) {
		return fmt.Errorf("sentinel.conf %s (--out, REDIS_HA_SENTINEL_CONF) cannot be merged: %w; fix or delete that line (redis-sentinel would refuse it too), or move the file away to start from a fresh render, which loses Sentinel's epochs and known peers; the file was left unchanged", c.Out, err)
	}
	if err != nil {
		return c.paramError(err)
	}
	sentinel.LogSentinelConfWarnings(log, c.Out, ch.Warnings)
	written, err := atomicfile.Write(c.Out, out, 0o600)
	if err != nil {
		return err
	}
	ev := log.Info().Str("path", c.Out).Bool("written", written).
		Str("master", p.MasterName).Str("master_addr", net.JoinHostPort(p.MasterHost, fmt.Sprint(p.MasterPort))).
		Bool("auth", p.Password != "")
	if ch.PreviousMaster != nil {
		ev = ev.Str("previous_master_addr", ch.PreviousMaster.String())
	}
	if len(ch.DroppedMasters) > 0 {
		ev = ev.Strs("dropped_masters", ch.DroppedMasters)
	}
	if len(ch.DroppedSentinels) > 0 {
		ds := make([]string, len(ch.DroppedSentinels))
		for i, s := range ch.DroppedSentinels {
			ds[i] = s.String() + " " + s.RunID
		}
		ev = ev.Strs("dropped_sentinels", ds)
	}
	if len(ch.DroppedReplicas) > 0 {
		ev = ev.Strs("dropped_replicas", addrStrings(ch.DroppedReplicas))
	}
	if len(ch.AddedReplicas) > 0 {
		ev = ev.Strs("added_replicas", addrStrings(ch.AddedReplicas))
	}
	ev.Msg("sentinel.conf rendered")
	return nil
}

func (c *SentinelconfRenderCmd) params() (sentinelconf.Params, error) {
	pw, err := secrets.ReadPasswordFile(c.PasswordFile)
	if err != nil {
		return sentinelconf.Params{}, err
	}
	if c.PodName == "" {
		return sentinelconf.Params{}, errors.New("--pod-name (POD_NAME) is empty: set it from the downward API (fieldRef metadata.name); the Sentinel myid is derived from it")
	}
	if err := c.TLS.Check(c.MasterPort, c.Port); err != nil {
		return sentinelconf.Params{}, err
	}
	p := sentinelconf.Params{
		TLS:        c.TLS.SentinelParams(),
		MasterName: c.MasterName, MasterHost: c.MasterHost, MasterPort: c.MasterPort,
		Quorum: c.Quorum, DownAfter: c.DownAfter, FailoverTimeout: c.FailoverTimeout, ParallelSyncs: c.ParallelSyncs,
		MyID: sentinelconf.MyID(c.Namespace, c.PodName), AnnounceHost: c.AnnounceHost, Port: c.Port,
		Password: pw,
	}
	for _, s := range c.Peers {
		peer, err := c.peer(s)
		if err != nil {
			return sentinelconf.Params{}, err
		}
		p.Peers = append(p.Peers, peer)
	}
	return p, nil
}

// peer reads "[POD=]HOST". Without POD the pod name is the host's first DNS
// label, which is what a StatefulSet pod's FQDN starts with.
func (c *SentinelconfRenderCmd) peer(s string) (sentinelconf.Peer, error) {
	s = strings.TrimSpace(s)
	pod, host, named := strings.Cut(s, "=")
	if !named {
		host = s
		if net.ParseIP(host) != nil {
			return sentinelconf.Peer{}, fmt.Errorf("--peer (REDIS_HA_PEERS) %q is an IP address, which does not name the pod its Sentinel myid is derived from: write it as <pod name>=%s", s, s)
		}
		pod, _, _ = strings.Cut(host, ".")
	}
	if pod == "" || host == "" {
		return sentinelconf.Peer{}, fmt.Errorf("--peer (REDIS_HA_PEERS) %q is not HOST or POD=HOST: give the peer pod's FQDN, e.g. redis-1.redis-headless.default.svc.cluster.local", s)
	}
	return sentinelconf.Peer{Host: host, MyID: sentinelconf.MyID(c.Namespace, pod)}, nil
}

// paramError names the flag behind a sentinelconf.ParamError.
func (c *SentinelconfRenderCmd) paramError(err error) error {
	var pe *sentinelconf.ParamError
	if !errors.As(err, &pe) {
		return err
	}
	field, _, _ := strings.Cut(pe.Field, "[")
	flag, ok := map[string]string{
		"MasterName":      "--master-name (REDIS_HA_MASTER_NAME)",
		"MasterHost":      "--master-host (REDIS_HA_MASTER_HOST)",
		"MasterPort":      "--master-port (REDIS_HA_MASTER_PORT)",
		"Quorum":          "--quorum (REDIS_HA_QUORUM)",
		"DownAfter":       "--down-after (REDIS_HA_DOWN_AFTER)",
		"FailoverTimeout": "--failover-timeout (REDIS_HA_FAILOVER_TIMEOUT)",
		"ParallelSyncs":   "--parallel-syncs (REDIS_HA_PARALLEL_SYNCS)",
		"AnnounceHost":    "--announce-host (REDIS_HA_ANNOUNCE_HOST)",
		"Port":            "--port (REDIS_HA_SENTINEL_PORT)",
		"MyID":            "--pod-name (POD_NAME)",
		"Password":        "the password in --password-file (REDIS_HA_PASSWORD_FILE) " + c.PasswordFile,
		"Peers":           "--peer (REDIS_HA_PEERS)",
	}[field]
	if !ok {
		return err
	}
	if pe.Value == "" {
		return fmt.Errorf("%s: %s", flag, pe.Problem)
	}
	return fmt.Errorf("%s %q: %s", flag, pe.Value, pe.Problem)
}

func addrStrings(as []sentinelconf.Addr) []string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return s
}
