package proctest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// proctest imports nothing of the agent: the packages it serves (secrets,
// sentinelconf, redisx) would import themselves in their tests.

// Observer is the ACL user the password rotation tests log in as: the
// rotation changes only the default user, so the tests' own checks never
// count as a refused login.
const Observer, ObserverPass = "rotation-test-observer", "observer-pass-0b5e"

// LoginWatch counts the refused logins of one redis-server or Sentinel
// from Start on: its ACL log (reason auth) and, where the engine has it
// (Redis 7.2+, Valkey), INFO stats' acl_access_denied_auth.
type LoginWatch struct {
	Name      string
	denied    int64
	hasDenied bool
}

// StartLoginWatch adds the Observer user on c's server (c logged in with
// the current password) and resets its ACL log.
func StartLoginWatch(t testing.TB, name string, c *redis.Client) *LoginWatch {
	t.Helper()
	ctx := context.Background()
	if err := c.Do(ctx, "ACL", "SETUSER", Observer, "on", ">"+ObserverPass, "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER %s on %s: %v", Observer, name, err)
	}
	if err := c.Do(ctx, "ACL", "LOG", "RESET").Err(); err != nil {
		t.Fatalf("ACL LOG RESET on %s: %v", name, err)
	}
	w := &LoginWatch{Name: name}
	w.denied, w.hasDenied = deniedAuth(ctx, c)
	return w
}

// Check reports every login refused since StartLoginWatch; c is logged in
// as Observer.
func (w *LoginWatch) Check(t testing.TB, c *redis.Client) {
	t.Helper()
	ctx := context.Background()
	entries, err := authLog(ctx, c)
	if err != nil {
		t.Errorf("ACL LOG on %s: %v", w.Name, err)
	} else if len(entries) > 0 {
		t.Errorf("%s refused %d login(s): %s", w.Name, len(entries), strings.Join(entries, "; "))
	}
	if w.hasDenied {
		if n, _ := deniedAuth(ctx, c); n != w.denied {
			t.Errorf("%s acl_access_denied_auth went from %d to %d", w.Name, w.denied, n)
		}
	}
}

func deniedAuth(ctx context.Context, c *redis.Client) (int64, bool) {
	s, err := c.Info(ctx, "stats").Result()
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "acl_access_denied_auth:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// authLog lists the ACL log's refused logins with their count and client.
func authLog(ctx context.Context, c *redis.Client) ([]string, error) {
	v, err := c.Do(ctx, "ACL", "LOG").Slice()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range v {
		fields, _ := e.([]any)
		f := map[string]string{}
		for i := 0; i+1 < len(fields); i += 2 {
			k, _ := fields[i].(string)
			f[k] = fmt.Sprint(fields[i+1])
		}
		if f["reason"] == "auth" {
			out = append(out, fmt.Sprintf("count=%s client=%s", f["count"], f["client-info"]))
		}
	}
	return out, nil
}

// PasswordHash is how ACL GETUSER lists a password.
func PasswordHash(pw string) string {
	h := sha256.Sum256([]byte(pw))
	return hex.EncodeToString(h[:])
}

// DefaultUserPasswords is the default user's password hashes on c's server.
func DefaultUserPasswords(c *redis.Client) ([]string, error) {
	v, err := c.Do(context.Background(), "ACL", "GETUSER", "default").Slice()
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(v); i += 2 {
		if v[i] == "passwords" {
			ps, _ := v[i+1].([]any)
			out := make([]string, 0, len(ps))
			for _, p := range ps {
				out = append(out, fmt.Sprint(p))
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("ACL GETUSER default answered no passwords field: %v", v)
}

// LogOffset is the size of a process log now, for AuthErrorsSince.
func LogOffset(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

var authErr = regexp.MustCompile(`(?i)NOAUTH|WRONGPASS|invalid password|AUTH failed|-ERR.*auth`)

// AuthErrorsSince reports every line of the log at path written after off
// that tells of a failed authentication (a replica's link to its master).
func AuthErrorsSince(t testing.TB, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < off {
		t.Errorf("read %s from offset %d: %v", path, off, err)
		return
	}
	for _, l := range strings.Split(string(b[off:]), "\n") {
		if authErr.MatchString(l) {
			t.Errorf("%s logged an auth error: %s", path, l)
		}
	}
}
