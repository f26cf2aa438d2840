// Package rotation owns the password rotation without failed logins: an
// ACL user may hold two passwords, so each agent first makes its servers
// accept the new one, switches its outgoing auth once every peer accepts
// it, and drops the old one once every peer has switched. The decision is
// a pure function (Decide); Rotator observes, decides and calls the mode's
// Ops, which own the Redis and Sentinel commands.
package rotation
