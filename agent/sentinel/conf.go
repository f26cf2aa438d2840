package sentinel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/sentinelconf"
)

// includeAddrs are the addresses the include names.
type includeAddrs struct {
	// Self is this pod's peer address (its DNS name), which the fence
	// points at.
	Self string
	// AnnounceHost and AnnouncePort are what the server announces to its
	// master and so to Sentinel and clients (replica-announce-ip/-port):
	// Self and the Redis port, or the external address.
	AnnounceHost string
	AnnouncePort int
	// MasterHost "" means the role is unknown: boot fenced.
	MasterHost string
	MasterPort int
}

// redisInclude is the redis.conf include init writes. No master host means
// the role is unknown: the server boots fenced, a replica of its own address
// on port 0, which refuses writes (READONLY) and never syncs, yet keeps the
// replid and offset it loaded from its RDB for the election; INFO still
// shows which pod is waiting. Booting as a master with an impossible
// min-replicas-to-write would let Sentinel see a second master.
//
// Port 0, not the server's own port: a connect to port 0 fails at once,
// while a replica of its own TLS port blocks in its own synchronous TLS
// handshake for repl-syncio-timeout (5 s) at every retry (once a second),
// so the fenced server answered nothing — not the agent's INFO, not a
// Sentinel — for seconds at a time (measured with redis-server 7.0.15:
// PING took 5.09 s; with port 0, 0.1 s, as with Redis 8.0 and Valkey 8.0
// and 8.1). In plaintext the self-connection only spun a futile
// PSYNC loop; port 0 serves both.
func redisInclude(cfg config.Config, pods int, a includeAddrs, password string) ([]byte, error) {
	fence, err := config.FenceFor(cfg, pods)
	if err != nil {
		return nil, err
	}
	if password != "" && !sentinelconf.RewriteSafe(password) {
		return nil, fmt.Errorf("the password in --password-file (REDIS_HA_PASSWORD_FILE) %s contains a space, a quote or a control character, which redis-sentinel 7.0 cannot write back into its config: use printable characters without spaces, e.g. hex or base64", cfg.PasswordFile)
	}
	role, host, port := "replica of "+a.MasterHost, a.MasterHost, a.MasterPort
	if a.MasterHost == "" {
		role, host, port = "fenced: replica of its own address on port 0 (connects nowhere) until the sidecar's election decides (no master known)", a.Self, 0
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by redis-ha-agent init at every pod start; edits are overwritten.\n# Role at start: %s\n", role)
	fmt.Fprintf(&b, "replica-announce-ip %s\nreplica-announce-port %d\n", a.AnnounceHost, a.AnnouncePort)
	fmt.Fprintf(&b, "replicaof %s %d\nreplica-read-only yes\n", host, port)
	// Every pod gets the fence: it applies from the moment Sentinel or the
	// election makes the pod master (agent/config/fence.go has the timing).
	fmt.Fprintf(&b, "min-replicas-to-write %d\nmin-replicas-max-lag %d\n", fence.ToWrite, fence.MaxLag)
	if password != "" {
		b.WriteString(strings.Join(authLines(cfg.Users(), password, []string{password}), "\n") + "\n")
	}
	if cfg.TLS.Enabled() {
		b.WriteString(strings.Join(cfg.TLS.RedisLines(cfg.RedisPort, false), "\n") + "\n")
	}
	return []byte(b.String()), nil
}

// rewriteIncludeAuth replaces the auth lines of the include, keeping the
// rest (the role it was written with at init). masterauth is what the
// server authenticates to its master with; accept the passwords it
// accepts, nil to keep the accepted ones as they are. One accepted
// password is written as requirepass, as init writes it; two (in the
// middle of a rotation) as a user line for the default user, which
// redis-server applies after requirepass: a server restarted then still
// accepts the password each of its peers authenticates with, whichever of
// the two that is. The users the agent manages (agent/acl) get user lines
// with the same passwords. An ACL file (aclfile in the image's
// redis.conf) refuses user lines in redis.conf: see README, "Password
// rotation".
func rewriteIncludeAuth(path string, users acl.Users, masterauth string, accept []string) error {
	for _, pw := range append([]string{masterauth}, accept...) {
		if pw != "" && !sentinelconf.RewriteSafe(pw) {
			return fmt.Errorf("the rotated password contains a space, a quote or a control character; keeping the old one in %s", path)
		}
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s to rotate its password: %w", path, err)
	}
	var lines, acceptLines []string
	fileUsers := map[string]bool{}
	for _, n := range acl.FileBlockNames(string(old)) {
		fileUsers[n] = true
	}
	for _, l := range strings.Split(strings.TrimRight(string(old), "\n"), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 1 && f[0] == "user" && fileUsers[f[1]]:
			// --acl-file's users: kept where they are.
			lines = append(lines, l)
		case strings.HasPrefix(l, "masterauth ") || strings.HasPrefix(l, "masteruser "):
		case strings.HasPrefix(l, "requirepass ") || strings.HasPrefix(l, "user "):
			acceptLines = append(acceptLines, l)
		default:
			lines = append(lines, l)
		}
	}
	if accept != nil {
		acceptLines = nil
	}
	lines = append(lines, authLines(users, masterauth, accept)...)
	lines = append(lines, acceptLines...)
	if _, err := atomicfile.Write(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("rotate the password in %s: %w", path, err)
	}
	return nil
}

// rewriteIncludeAuth is rewriteIncludeAuth of this mode's include, under
// includeMu (the --acl-file users rewrite it too).
func (m *sentinelMode) rewriteIncludeAuth(masterauth string, accept []string) error {
	m.includeMu.Lock()
	defer m.includeMu.Unlock()
	return rewriteIncludeAuth(m.cfg.RedisConfInclude, m.cfg.Users(), masterauth, accept)
}

// authLines are the include's auth lines: masteruser and masterauth for
// the replication link, then what makes redis-server accept the
// passwords given (nil: none of those lines), for the default user and
// each user the agent manages.
func authLines(users acl.Users, masterauth string, accept []string) []string {
	var lines []string
	if masterauth != "" {
		if r := users.Login(users.Replication); r != "" {
			lines = append(lines, "masteruser "+r)
		}
		lines = append(lines, "masterauth "+masterauth)
	}
	if accept == nil {
		return lines
	}
	pws := distinct(accept)
	if users.DefaultOff {
		lines = append(lines, acl.DefaultOffLine)
	} else {
		lines = append(lines, acceptAuthLines(pws)...)
	}
	if len(pws) > 0 {
		for _, u := range users.On(acl.ModeSentinel, acl.Redis) {
			lines = append(lines, u.Line(pws))
		}
	}
	return lines
}

func distinct(pws []string) []string {
	var out []string
	for _, pw := range pws {
		if pw != "" && !slices.Contains(out, pw) {
			out = append(out, pw)
		}
	}
	return out
}

// acceptAuthLines are the include's lines that make the default user
// accept the passwords given (none: no auth).
func acceptAuthLines(pws []string) []string {
	switch len(pws) {
	case 0:
		return nil
	case 1:
		return []string{"requirepass " + pws[0]}
	}
	l := "user default on ~* &* +@all"
	for _, pw := range pws {
		l += " >" + pw
	}
	return []string{l}
}

// sentinelFile merges the agent's lines into the existing sentinel.conf.
// With a master unknown (MasterHost "") it has no monitor at all: a Sentinel
// monitoring a pod that booted fenced would see a "master" that reports
// replica, try to fail it over, and — several of them agreeing — look like
// a Sentinel majority for a pod that has no right to be master. The sidecar
// issues SENTINEL MONITOR once the Lease or the election names the master.
func sentinelFile(existing []byte, p sentinelconf.Params) ([]byte, sentinelconf.Changes, error) {
	if p.MasterHost == "" {
		p.MasterPort = 0
	}
	return sentinelconf.Merge(existing, p)
}

// LogSentinelConfWarnings logs, once each, the lines of sentinel.conf at
// path that the merge did not understand (sentinelconf.Changes.Warnings). It logs the directive
// name and line number only: the line itself may hold a password (a newer
// engine's auth directive is exactly what would be unknown here). Both the
// agent's init and the sentinelconf command log through it.
func LogSentinelConfWarnings(log zerolog.Logger, path string, ws []sentinelconf.Warning) {
	for _, w := range ws {
		log.Warn().Str("file", path).Int("line", w.Line).Str("directive", w.Directive).
			Msg("sentinel.conf has a directive this agent does not know (a newer engine's, or a typo); kept as written unless it is about a master the file no longer monitors: if redis-sentinel refuses it at start, remove the line")
	}
}

// readIfExists reads a config file; a missing one is empty.
func readIfExists(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// writeConf writes a config file atomically with mode 0600 (it may hold the
// password), creating its directory.
func writeConf(path string, data []byte) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("create directory for %s: %w", path, err)
	}
	return atomicfile.Write(path, data, 0o600)
}

func quorumOf(cfg config.Config, pods int) int {
	if cfg.Quorum > 0 {
		return cfg.Quorum
	}
	return pods/2 + 1
}
