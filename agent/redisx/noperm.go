package redisx

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// NoPermError is a command refused to the ACL user the agent logs in as:
// the server's NOPERM answer with the user and the fix, so a user that
// lost a permission after the start check names itself in the first
// error it causes.
type NoPermError struct {
	User string
	Err  error
}

func (e *NoPermError) Error() string {
	return fmt.Sprintf("ACL user %q: %v; give it the agent's rules (README, \"ACL users\")", e.User, e.Err)
}

func (e *NoPermError) Unwrap() error { return e.Err }

// NoPermHook turns the NOPERM answers of a client logged in as user into
// NoPermError; nil for the default user, whose refusals name no user.
func NoPermHook(user string) redis.Hook {
	if user == "" {
		return nil
	}
	return noPermHook{user: user}
}

type noPermHook struct{ user string }

func (h noPermHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h noPermHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		// The client sets cmd's error from what this returns.
		return h.wrapErr(next(ctx, cmd))
	}
}

func (h noPermHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			c.SetErr(h.wrapErr(c.Err()))
		}
		return h.wrapErr(err)
	}
}

// wrapErr makes a NOPERM answer a NoPermError; other errors pass.
func (h noPermHook) wrapErr(err error) error {
	if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		return err
	}
	return &NoPermError{User: h.user, Err: err}
}
