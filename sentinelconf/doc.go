// Package sentinelconf renders redis-sentinel's sentinel.conf and merges it
// into a file Sentinel has rewritten itself. It is pure: bytes and structs
// in, bytes out; no Redis, no Kubernetes, no logging, no file I/O.
//
// API:
//
//   - MyID(namespace, pod) is a pod's Sentinel myid (SHA-1 of
//     "<namespace>/<pod>", 40 hex characters): stable across restarts,
//     distinct per pod, and computable for every peer without asking it.
//   - Render(Params) is a fresh file; Merge(existing, Params) is the same
//     file merged into an existing one, plus the Changes it made.
//   - Parse(existing) is a File: every line kept for writing back (Bytes),
//     and a view of what Sentinel recorded — MyID, CurrentEpoch, Masters,
//     and per master (Master) the address, quorum, config and leader epochs,
//     known replicas and known sentinels.
//   - Errors are typed: *ParamError names the Params field, *ParseError the
//     line number, its text (passwords redacted) and what was expected.
//   - Warnings are not errors: File.Warnings (and Changes.Warnings from
//     Merge) list the sentinel directives this package does not know, kept
//     verbatim; the caller logs them.
//
// Parse reads lines as the Sentinels of Redis 7.0 and 8.0 and Valkey 8.0
// and 8.1 do: directives are case-insensitive, blanks are trimmed, # starts
// a comment line, and arguments are split with sdssplitargs quoting ("..."
// with \n, \xHH and \<char> escapes; '...' with \'). sentinel directives
// these engines load (Valkey's primary-reboot-down-after-period beside
// master-reboot-down-after-period) are checked against their forms; an
// unknown sentinel directive is kept and reported as a Warning, since a
// newer engine adds directives and refusing a file Sentinel wrote itself
// would stop the pod; any other directive is checked only for being a word,
// because this package does not own it.
//
// Merge owns these lines and writes them first, in this order: port (with
// Params.TLS: port, tls-port, tls-cert-file, tls-key-file, tls-ca-cert-file,
// tls-auth-clients and tls-replication yes, which is what makes Sentinel use
// TLS towards Redis and the other Sentinels), sentinel myid, resolve-hostnames yes, announce-hostnames yes, announce-ip
// <pod FQDN>, announce-port, and for Params.MasterName the monitor,
// down-after-milliseconds, failover-timeout, parallel-syncs and auth-pass.
// Every other line of the existing file keeps its place, with these
// exceptions:
//
//   - Epochs (current-epoch, config-epoch, leader-epoch) are kept exactly,
//     also when the master changed: lowering config-epoch would let a
//     Sentinel accept an older configuration from its peers' hellos, and
//     raising it here would make this pod's choice beat a failover that
//     Sentinels agreed on. When the agent changes the master it does so from
//     a Sentinel majority or the Lease; peers with a newer epoch correct it.
//   - When the master address changed, known-replica lines for the new
//     master are dropped (Sentinel would try to make the master replicate
//     itself) and the old master is added as a known replica if its pod
//     still exists, which is what Sentinel does itself on +switch-master: an
//     old master that comes back is turned into a replica.
//   - known-sentinel lines are kept only for a host in Params.Peers whose
//     runid is that peer's myid: a removed pod's line would keep counting a
//     dead Sentinel, and a line with another runid for a live host is a
//     Sentinel that ran there before. known-replica lines are kept only for
//     a host in Peers or this pod's own AnnounceHost. Sentinel 7.0 refuses
//     to start when a known-* or monitor host does not resolve, so Peers
//     must be pods that exist (with publishNotReadyAddresses DNS). Duplicate
//     known-* lines are dropped.
//   - Lines about any other master name are dropped: the file belongs to
//     one master, and a renamed master would otherwise stay monitored under
//     its old name.
//   - Auth: with Params.Password set, Merge writes auth-pass for the master
//     and also requirepass and sentinel-pass, so the Sentinels require the
//     same password from clients (anyone who can reach an open Sentinel can
//     run SENTINEL FAILOVER or SET) and present it to each other. Without a
//     password all three are removed. "user default ..." lines are always
//     removed: Sentinel applies them after requirepass, so a rewritten one
//     would keep an old password (or none) alive after a rotation; Sentinel
//     writes it again from requirepass. Other user lines are kept.
//   - No master known (Params.MasterHost empty, a pod booting fenced): no
//     monitor is written and every line about MasterName is dropped,
//     epochs included, since Sentinel refuses them without a monitor; a
//     Sentinel monitoring a pod that is not master would try to fail it
//     over. current-epoch, being global, is kept.
//   - Unknown sentinel directives (Warnings) whose first argument names a
//     monitored master go with that master's lines: kept for MasterName,
//     dropped for another master or when no master is known.
//   - "# ??? " comment lines, which Sentinel's rewrite leaves for lines it
//     could not parse (Valkey 8.1.1: its own requirepass, one per rewrite,
//     holding the password), are dropped.
//   - Runs of blank lines are collapsed to one.
//
// Merge(Merge(x)) == Merge(x) for the same Params.
//
// A trap measured with redis-sentinel 7.0.15, and the same in 8.0.2 and
// valkey-sentinel 8.0.1 and 8.1.1: CONFIG REWRITE writes auth-pass,
// sentinel-pass and master names without quotes, so a value with a space or
// a quote makes Sentinel refuse its own file at the next start; Valkey
// 8.1.1 also writes requirepass between quotes without escaping the quotes
// inside. Params rejects such values; Parse accepts such auth-pass,
// sentinel-pass and requirepass lines (the rest of the line is the
// password) so that Merge can repair a file Sentinel broke.
//
// Tests read testdata/<engine>-<version>/*.conf, files each engine's
// Sentinel wrote itself (testdata/generate.sh runs a master, a replica and
// three Sentinels on 127.0.20.x, two failovers and a SENTINEL SET, from the
// host or an e2e image's root filesystem), and every merged golden file is
// loaded by a real Sentinel of its engine.
package sentinelconf
