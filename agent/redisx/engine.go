package redisx

import (
	"errors"
	"fmt"
	"strings"
)

// Engine is the server software a pod runs, as its own INFO says: Redis or
// Valkey, and that engine's version.
type Engine struct {
	Name    string `json:"engine"`         // "redis", "valkey"
	Version string `json:"engine_version"` // the engine's own, e.g. "8.1.1"
}

func (e Engine) String() string { return e.Name + " " + e.Version }

// EngineOf reads the engine from INFO server, as ParseInfo returns it.
//
// Valkey names itself in server_name and reports its version in
// valkey_version; its redis_version is fixed at 7.2.4 (for clients that
// compare it), so it is never read for Valkey. Redis has no server_name and
// reports redis_version. An engine with another server_name is taken to
// report <name>_version, as Valkey does, rather than guessed from
// redis_version.
func EngineOf(info map[string]string) (Engine, error) {
	name := strings.ToLower(strings.TrimSpace(info["server_name"]))
	if name == "" {
		v := info["redis_version"]
		if v == "" {
			return Engine{}, errors.New("INFO server has neither server_name nor redis_version: the reply is not INFO server of a Redis or Valkey server")
		}
		return Engine{Name: "redis", Version: v}, nil
	}
	field := name + "_version"
	v := info[field]
	if v == "" {
		return Engine{}, fmt.Errorf("INFO server says server_name:%s but has no %s field; redis_version (%q) is not this engine's version", name, field, info["redis_version"])
	}
	return Engine{Name: name, Version: v}, nil
}
