package sentinelconf

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Params is what the rendered file must say. Every field but Password,
// Peers and MasterHost is required.
type Params struct {
	MasterName string
	// MasterHost is the pod FQDN (or IP) of the master. Empty means no
	// master is known (a pod that boots fenced): the file then has no
	// monitor and no lines about MasterName, because a Sentinel monitoring a
	// pod that is not master would try to fail it over. MasterPort is then
	// not checked.
	MasterHost      string
	MasterPort      int
	Quorum          int
	DownAfter       time.Duration // written in whole milliseconds
	FailoverTimeout time.Duration // written in whole milliseconds
	ParallelSyncs   int

	MyID         string // see MyID
	AnnounceHost string // this pod's FQDN; Sentinel announces it to peers and clients
	Port         int    // port, and announce-port unless AnnouncePort is set
	// AnnouncePort is the port announced when it differs from Port (an
	// external NodePort); 0 announces Port.
	AnnouncePort int

	// Password, when set, is written as auth-pass for the master, and as
	// requirepass and sentinel-pass so that Sentinels require it from
	// clients and present it to each other. Empty means no auth.
	Password string

	// AuthUser, when set, is written as auth-user for the master: the ACL
	// user Sentinel logs in to redis-servers as (with Password).
	// SentinelUser, when set, is written as sentinel-user: the user it
	// logs in to the other Sentinels as. Users are user lines
	// ("user <name> <rules>") for this Sentinel's own ACL; any user line of
	// the existing file for one of their names is replaced.
	AuthUser     string
	SentinelUser string
	Users        []string

	// TLS, when set, makes Sentinel serve TLS on Port (and plaintext only
	// on TLS.PlaintextPort, if any) and talk TLS to Redis and to the other
	// Sentinels. nil is plaintext on Port.
	TLS *TLS

	// Peers are the other pods that exist now. known-sentinel and
	// known-replica lines for any other host are dropped.
	Peers []Peer
}

// TLS is Sentinel's TLS: the files redis-sentinel reads (a Secret volume)
// and tls-auth-clients. Sentinel uses tls-replication both for its
// connections to Redis and for the port other Sentinels reach it on.
type TLS struct {
	CertFile, KeyFile, CAFile string
	AuthClients               string // yes, optional or no
	PlaintextPort             int    // 0: no plaintext port
}

// Peer is another pod of the StatefulSet, running a redis-server and a
// Sentinel under the same DNS name.
type Peer struct {
	Host string // as Sentinel knows it: the pod FQDN it announces
	MyID string // its Sentinel myid, MyID(namespace, pod name)
}

// MyID is the Sentinel myid of a pod: the SHA-1 of "<namespace>/<pod name>"
// in hex, 40 characters as Sentinel requires. Deriving it from the pod name
// keeps it stable across restarts and IP changes, so peers recognise a
// restarted Sentinel instead of counting it twice, and lets any pod know
// every peer's id without asking it.
func MyID(namespace, podName string) string {
	sum := sha1.Sum([]byte(namespace + "/" + podName))
	return hex.EncodeToString(sum[:])
}

// ParamError says which Params field is unusable and why. The CLI maps Field
// to its flag.
type ParamError struct {
	Field   string // Params field name, e.g. "Quorum", or "Peers[1].Host"
	Value   string // empty for Password: secrets never go into errors
	Problem string // what is wrong and what would be right
}

func (e *ParamError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Problem)
	}
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Problem)
}

// Validate checks that the file Params render is one redis-sentinel 7.0
// loads, and keeps loading after it rewrote the file itself.
func (p Params) Validate() error {
	bad := func(field, value, problem string) error {
		return &ParamError{Field: field, Value: value, Problem: problem}
	}
	if !RewriteSafe(p.MasterName) {
		return bad("MasterName", p.MasterName, "must be a non-empty word without spaces, quotes or control characters (Sentinel writes it unquoted when it rewrites its file)")
	}
	if p.MasterHost != "" && !isHost(p.MasterHost) {
		return bad("MasterHost", p.MasterHost, "must be a DNS name or an IP address, or empty when no master is known")
	}
	if !isHost(p.AnnounceHost) {
		return bad("AnnounceHost", p.AnnounceHost, "must be a DNS name or an IP address (this pod's FQDN)")
	}
	if p.MasterHost != "" && (p.MasterPort < 1 || p.MasterPort > 65535) {
		return bad("MasterPort", fmt.Sprint(p.MasterPort), "must be a TCP port, 1-65535")
	}
	if p.Port < 1 || p.Port > 65535 {
		return bad("Port", fmt.Sprint(p.Port), "must be a TCP port, 1-65535")
	}
	if p.AnnouncePort < 0 || p.AnnouncePort > 65535 {
		return bad("AnnouncePort", fmt.Sprint(p.AnnouncePort), "must be a TCP port, 1-65535, or 0 to announce Port")
	}
	if p.Quorum < 1 {
		return bad("Quorum", fmt.Sprint(p.Quorum), "must be 1 or more: a majority of the Sentinels, e.g. 2 of 3")
	}
	if p.DownAfter < time.Millisecond {
		return bad("DownAfter", p.DownAfter.String(), "must be 1ms or more")
	}
	if p.FailoverTimeout < time.Millisecond {
		return bad("FailoverTimeout", p.FailoverTimeout.String(), "must be 1ms or more")
	}
	if p.ParallelSyncs < 1 {
		return bad("ParallelSyncs", fmt.Sprint(p.ParallelSyncs), "must be 1 or more")
	}
	if !isMyID(p.MyID) {
		return bad("MyID", p.MyID, "must be 40 hex characters; use MyID(namespace, pod name)")
	}
	if p.Password != "" && !RewriteSafe(p.Password) {
		// Measured with redis-sentinel 7.0.15: CONFIG REWRITE writes
		// auth-pass and sentinel-pass unquoted, so a password with a space
		// becomes extra arguments and Sentinel refuses its own file at the
		// next start ("Unrecognized sentinel configuration statement");
		// Redis 8.0.2 and Valkey 8.0.1/8.1.1 do the same. A quote anywhere
		// is refused too (see RewriteSafe); cmd's tests pin this text.
		return bad("Password", "", "contains a space, a quote or a control character; redis-sentinel 7.0 writes it unquoted when it rewrites sentinel.conf and then cannot load the file: use a password of printable characters without spaces or quotes, e.g. hex or base64")
	}
	for field, v := range map[string]string{"AuthUser": p.AuthUser, "SentinelUser": p.SentinelUser} {
		if v != "" && !RewriteSafe(v) {
			return bad(field, v, "must be a user name without spaces, quotes or control characters")
		}
	}
	for i, u := range p.Users {
		f := strings.Fields(u)
		if len(f) < 2 || f[0] != "user" || strings.ContainsAny(u, "\r\n") {
			return bad(fmt.Sprintf("Users[%d]", i), "", "must be one line: user <name> <rules>")
		}
	}
	if err := p.TLS.validate(p.Port); err != nil {
		return err
	}
	for i, peer := range p.Peers {
		if !isHost(peer.Host) {
			return bad(fmt.Sprintf("Peers[%d].Host", i), peer.Host, "must be a DNS name or an IP address")
		}
		if !isMyID(peer.MyID) {
			return bad(fmt.Sprintf("Peers[%d].MyID", i), peer.MyID, "must be 40 hex characters; use MyID(namespace, pod name)")
		}
	}
	return nil
}

// RewriteSafe reports whether s reads back as one bare argument: Sentinel's
// CONFIG REWRITE writes master names and passwords unquoted, so a password
// that is not rewrite-safe breaks sentinel.conf, and the redis.conf include
// that carries the same password is held to the same rule. A quote anywhere
// is unsafe, not only a leading one: Redis reads a quote inside a bare word
// as the start of a quoted part (measured with redis-sentinel 7.0.15:
// "sentinel auth-pass m ab"cd" stops it with "Unbalanced quotes"), and
// valkey-sentinel 8.1.1 writes requirepass "ab"cd" without escapes.
func RewriteSafe(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '"' || c == '\'' {
			return false
		}
	}
	return true
}

// isHost accepts DNS names and IPv4/IPv6 literals: the characters Sentinel
// can write bare in known-sentinel and known-replica lines.
func isHost(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

func isMyID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func (t *TLS) validate(port int) error {
	if t == nil {
		return nil
	}
	bad := func(field, value, problem string) error {
		return &ParamError{Field: "TLS." + field, Value: value, Problem: problem}
	}
	for field, v := range map[string]string{"CertFile": t.CertFile, "KeyFile": t.KeyFile, "CAFile": t.CAFile} {
		if !RewriteSafe(v) {
			return bad(field, v, "must be a file path without spaces, quotes or control characters")
		}
	}
	switch t.AuthClients {
	case "yes", "optional", "no":
	default:
		return bad("AuthClients", t.AuthClients, "must be yes, optional or no")
	}
	if t.PlaintextPort < 0 || t.PlaintextPort > 65535 || t.PlaintextPort == port {
		return bad("PlaintextPort", fmt.Sprint(t.PlaintextPort), "must be 0 (TLS only) or a TCP port other than Port")
	}
	return nil
}
