// Package acl owns the ACL users the agent manages: the agent's own
// least-privilege user, the replication user (masteruser) and Sentinel's
// user (auth-user towards redis-servers, sentinel-user between Sentinels),
// whether the default user is on, the command sets each may run, and the
// user lines and ACL SETUSER rules that give them. It is pure: no Redis,
// no Kubernetes, no logging; the modes apply what it renders, and check a
// server's users against Needed with ACL DRYRUN.
package acl
