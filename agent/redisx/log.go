package redisx

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-logr/zerologr"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"k8s.io/klog/v2"
)

// redisLogger sends go-redis's own messages (a pool that failed to dial, a
// reconnect) through zerolog, so every line the agent prints is JSON with
// the same fields. They are at debug level: the agent reports the failed
// call itself where it matters.
type redisLogger struct{ log zerolog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug().Msg(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// RouteLibraryLogs sends the libraries' global loggers through zerolog:
// go-redis (the adapter above) and client-go's klog (for instance an Event
// the API server rejected). Both are process-wide; init and run each call
// this once at start.
func RouteLibraryLogs(log zerolog.Logger) {
	redis.SetLogger(redisLogger{log: log.With().Str("component", "go-redis").Logger()})
	kl := log.With().Str("component", "client-go").Logger()
	klog.SetLogger(zerologr.New(&kl))
}
