// Package secrets owns the files mounted from Secrets: the Redis password
// and the TLS certificate, key and CA. It reads and validates them, watches
// them for rotation (fsnotify on the parent directory, backed by a
// periodic re-read), and renders them as redis.conf lines.
package secrets
