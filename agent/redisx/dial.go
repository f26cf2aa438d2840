package redisx

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
)

// PodIPLookup returns the current IP of the pod a peer DNS name belongs to,
// from the Kubernetes API: the fallback when cluster DNS does not answer
// for a peer (measured on the e2e cluster: a terminating pod's lookups of
// its peers failed with NXDOMAIN during its preStop switchover).
type PodIPLookup func(ctx context.Context, host string) (string, bool)

// Dial is how the agent reaches redis-servers and Sentinels: its own
// short calls with one small pool, short timeouts, no retries (the next
// pass retries), RESP2 so a loading server still answers AUTH, no CLIENT
// SETINFO (Redis 7.0 lacks it). The password is read at each connect, and
// so are the TLS files, so a rotated Secret applies to new connections
// without rebuilding the client.
type Dial struct {
	// User is the ACL user to log in as; "" is the default user.
	User     string
	Password func() string
	Timeout  time.Duration
	// fallback finds a pod's IP from the API when its DNS name does not
	// resolve; nil is DNS only.
	Fallback PodIPLookup
	// tls nil is plaintext; otherwise every connection is TLS, verified
	// against the CA, and never falls back to plaintext.
	TLS *secrets.TLSFiles
	// serverName is the name a server's certificate must hold when dialed
	// at host; nil is host itself.
	ServerName func(host string) string
}

func (d Dial) Options(addr string) *redis.Options {
	o := redisOptions0(addr, d.User, d.Password, d.Timeout)
	o.Dialer = d.Dialer()
	return o
}

// dialer is the go-redis Dialer: TCP (with the API fallback), then TLS;
// nil, go-redis's own, when neither is needed.
func (d Dial) Dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.Fallback == nil && d.TLS == nil {
		return nil
	}
	nd := &net.Dialer{Timeout: d.Timeout}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.dialTCP(ctx, nd, network, addr)
		if err != nil || d.TLS == nil {
			return c, err
		}
		host, _, _ := net.SplitHostPort(addr)
		name := host
		if d.ServerName != nil {
			name = d.ServerName(host)
		}
		return d.TLS.Handshake(ctx, c, addr, name)
	}
}

// dialTCP dials addr, and on a DNS error the pod's IP from the API.
func (d Dial) dialTCP(ctx context.Context, nd *net.Dialer, network, addr string) (net.Conn, error) {
	c, err := nd.DialContext(ctx, network, addr)
	var dnsErr *net.DNSError
	if err == nil || d.Fallback == nil || !errors.As(err, &dnsErr) {
		return c, err
	}
	host, port, _ := net.SplitHostPort(addr)
	ip, ok := d.Fallback(ctx, host)
	if !ok {
		return nil, err
	}
	return nd.DialContext(ctx, network, net.JoinHostPort(ip, port))
}

func redisOptions0(addr, user string, password func() string, timeout time.Duration) *redis.Options {
	return &redis.Options{
		Addr:                  addr,
		Protocol:              2,
		DisableIdentity:       true,
		CredentialsProvider:   func() (string, string) { return user, password() },
		DialTimeout:           timeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		// The loop, probes, /status and a preStop may call at once.
		PoolSize: 4,
	}
}
