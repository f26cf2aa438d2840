package acl

import (
	"context"
	"fmt"
	"strings"
)

// DryRun is ACL DRYRUN <user> <cmd...> on one server: "" when the user
// may run cmd, else the server's reason; err when the DRYRUN itself
// failed (no such user, the caller may not run it, no answer).
type DryRun func(ctx context.Context, user string, cmd []string) (string, error)

// PermissionError is a user the agent manages that may not run a
// command it needs: Check's answer, which stops the agent at start with
// the user, the command and the fix.
type PermissionError struct {
	Where   string // "redis-server 10.0.0.1:6379"
	User    Managed
	Command Command // nil when the user does not exist
	Reason  string
}

func (e *PermissionError) Error() string {
	fix := fmt.Sprintf("give it its rules again: ACL SETUSER %s %s (README, \"ACL users\"; the agent writes them into --redis-conf-include and sentinel.conf at init, so an aclfile in the image's redis.conf, a user line after the include or a later ACL SETUSER overrode them)", e.User.Name, e.User.Rules.Rules)
	if e.Command == nil {
		return fmt.Sprintf("%s has no ACL user %q (the %s user): %s; %s", e.Where, e.User.Name, e.User.Role, e.Reason, fix)
	}
	return fmt.Sprintf("on %s the ACL user %q (the %s user) may not run %q, which it needs: %s; %s", e.Where, e.User.Name, e.User.Role, e.Command.String(), e.Reason, fix)
}

// Check asks, with dryRun on one server, whether each user may run every
// command it needs. It returns a *PermissionError for the first one that
// may not (or does not exist), or another error when the server could
// not answer (the caller retries).
func Check(ctx context.Context, where string, users []Managed, dryRun DryRun) error {
	for _, u := range users {
		for _, cmd := range u.Needed {
			why, err := dryRun(ctx, u.Name, cmd)
			switch {
			case err != nil && strings.Contains(err.Error(), "not found"):
				return &PermissionError{Where: where, User: u, Reason: err.Error()}
			case err != nil && strings.Contains(err.Error(), "NOPERM"):
				// The agent's own login may not run ACL DRYRUN: that is
				// the agent user missing +acl|dryrun.
				return &PermissionError{Where: where, User: u, Command: Command{"acl", "dryrun"}, Reason: err.Error()}
			case err != nil:
				return fmt.Errorf("check the ACL user %q on %s: %w", u.Name, where, err)
			case why != "":
				return &PermissionError{Where: where, User: u, Command: cmd, Reason: why}
			}
		}
	}
	return nil
}
