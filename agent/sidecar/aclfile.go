package sidecar

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/utils/clock"

	"github.com/redis-ha-agent/redis-ha-agent/agent/acl"
	"github.com/redis-ha-agent/redis-ha-agent/agent/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/secrets"
)

// ACLFileUsers keeps the local redis-server's application users equal to
// --acl-file (README, "ACL users"): at start and after every change of
// the file, each user of the file is set anew (ACL SETUSER <name> reset
// <rules>, one command, so the user is never half-defined), each user the
// include defined before and the file no longer has is reset (off, no
// password, no command), and the include's block of these users is
// rewritten, so a restarted redis-server defines the same.
type ACLFileUsers struct {
	File    *secrets.File
	Managed []string // the users the agent manages, which the file may not define
	Include string   // --redis-conf-include
	// IncludeMu, when set, is held while the include is rewritten: the
	// mode's other writer of it takes it too.
	IncludeMu *sync.Mutex
	SetUser   func(ctx context.Context, name string, rules []string) error
	Log       zerolog.Logger
	Clock     clock.WithTicker
}

// errBadFile is a file that does not parse: applied again only after it
// changes.
var errBadFile = errors.New("the ACL file does not parse")

// Run applies the file at start and after each change until ctx ends;
// a failed apply (redis-server not answering) is retried every second.
func (a *ACLFileUsers) Run(ctx context.Context) error {
	if a.File == nil || a.File.Path() == "" {
		return nil
	}
	log := a.Log.With().Str("component", "acl-file").Logger()
	t := a.Clock.NewTicker(time.Second)
	defer t.Stop()
	pending := true
	for {
		if pending {
			err := a.Apply(ctx)
			switch {
			case err == nil:
				pending = false
			case errors.Is(err, errBadFile):
				log.Error().Err(err).Msg("keeping the users as they are until the file changes")
				pending = false
			default:
				log.Debug().Err(err).Msg("cannot apply --acl-file yet; retrying in a second")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.File.Changed():
			pending = true
		case <-t.C():
		}
	}
}

// Apply makes the local redis-server's file users and the include's block
// what the file says now.
func (a *ACLFileUsers) Apply(ctx context.Context) error {
	users, err := acl.ParseFile(a.File.Get(), "--acl-file (REDIS_HA_ACL_FILE) "+a.File.Path(), a.Managed)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadFile, err)
	}
	if a.IncludeMu != nil {
		a.IncludeMu.Lock()
		defer a.IncludeMu.Unlock()
	}
	old, err := os.ReadFile(a.Include)
	if err != nil {
		return fmt.Errorf("read --redis-conf-include %s: %w", a.Include, err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
		if err := a.SetUser(ctx, u.Name, append([]string{"reset"}, u.Rules...)); err != nil {
			return fmt.Errorf("ACL SETUSER %s (from --acl-file) on the local redis-server: %w", u.Name, err)
		}
	}
	for _, gone := range acl.FileBlockNames(string(old)) {
		if slices.Contains(names, gone) {
			continue
		}
		if err := a.SetUser(ctx, gone, []string{"reset"}); err != nil {
			return fmt.Errorf("ACL SETUSER %s reset (no longer in --acl-file) on the local redis-server: %w", gone, err)
		}
	}
	if _, err := atomicfile.Write(a.Include, []byte(acl.ReplaceFileBlock(string(old), users)), 0o600); err != nil {
		return fmt.Errorf("write the --acl-file users into --redis-conf-include: %w", err)
	}
	return nil
}

// ReadACLFile reads and parses --acl-file for init: the users its include
// defines. None when the flag is unset.
func ReadACLFile(cfg config.Config, mode acl.Mode) ([]acl.FileUser, error) {
	f, err := secrets.NewFile(cfg.ACLFile, "--acl-file (REDIS_HA_ACL_FILE)")
	if err != nil || cfg.ACLFile == "" {
		return nil, err
	}
	return acl.ParseFile(f.Get(), "--acl-file (REDIS_HA_ACL_FILE) "+cfg.ACLFile, ManagedNames(cfg, mode))
}

// ManagedNames are the names of the users the agent manages on
// redis-servers, which --acl-file may not define.
func ManagedNames(cfg config.Config, mode acl.Mode) []string {
	var out []string
	for _, u := range cfg.Users().On(mode, acl.Redis) {
		out = append(out, u.Name)
	}
	return out
}
