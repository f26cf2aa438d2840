// Package redisx owns how the agent reaches redis-server and Sentinel: the
// go-redis dialer both modes use (short timeouts, no retries, TLS, the API
// fallback for a peer whose DNS name does not resolve), the one parser of
// INFO replies and its replication view, the engine (Redis or Valkey) a
// server reports, and the route of go-redis's own logs into the agent's.
package redisx
