#!/usr/bin/env bash
# Regenerates the real sentinel.conf files of one engine: runs a master, a
# replica and three Sentinels on 127.0.20.x loopback addresses, lets Sentinel
# rewrite its files, triggers SENTINEL FAILOVER twice (to get epochs), sets
# the reboot down-after period (which each engine writes under its own name),
# and copies the files Sentinel wrote to testdata/<engine>-<version>/.
#
# Usage: testdata/generate.sh [noauth|auth] [ROOT]
#   auth  Redis and Sentinel require a password (auth-pass/requirepass).
#   ROOT  run the engine from a root filesystem with chroot (as root): a
#         directory, or an e2e image tarball (docker-archive, one layer) such
#         as ~/.cache/redis-ha-agent-e2e/images/valkey-8.1-*.tar, which is
#         extracted to a temp dir. Without ROOT the host's binaries run.
# The engine is Valkey when ROOT has valkey-server, else Redis;
# ENGINE=redis|valkey overrides (ENGINE=valkey for the host's
# bookworm-backports valkey-sentinel).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
variant=${1:-noauth}
root=${2:-}
work=
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n $work ]]; then rm -rf "$work"; fi
  if [[ -n ${extracted:-} ]]; then rm -rf "$extracted"; fi
}
trap cleanup EXIT

if [[ -f $root ]]; then
  extracted=$(mktemp -d /tmp/sentinelconf-root.XXXXXX)
  tar -xOf "$root" --wildcards '*.tar.gz' | tar -xz -C "$extracted"
  # The image has no device nodes (the runtime mounts /dev); Redis reads
  # /dev/urandom for run ids and redirects to /dev/null.
  mknod -m 666 "$extracted/dev/null" c 1 3
  mknod -m 666 "$extracted/dev/urandom" c 1 9
  root=$extracted
fi
# run execs, so that the pid of "run ... &" is the server's own: only call it
# in a subshell (& or $(...)).
run() { if [[ -n $root ]]; then exec chroot "$root" "$@"; else exec "$@"; fi; }
engine=${ENGINE:-}
if [[ -z $engine ]]; then if [[ -n $root && -x $root/usr/bin/valkey-server ]]; then engine=valkey; else engine=redis; fi; fi
server=$engine-server sentinel=$engine-sentinel
version=$(run "$server" --version | sed -n 's/.* v=\([0-9.]*\) .*/\1/p')
out=$here/$engine-$version
mkdir -p "$out"
# Work inside ROOT so that the paths Sentinel writes (dir, logfile) are the
# ones it sees; inner() is such a path as seen from inside.
work=$(mktemp -d "$root/tmp/sentinelconf-gen.XXXXXX")
chmod 755 "$work"
inner() { echo "${1#"$root"}"; }

pw=
if [[ $variant == auth ]]; then pw='s3cret "pw"'; fi
rport=6390 sport=26390
# Like pods: each redis-server shares its address with a Sentinel.
m=127.0.20.11 r=127.0.20.12
sentinels=(127.0.20.11 127.0.20.12 127.0.20.13)

# The host's redis-cli talks to every engine (same protocol).
cli() { # cli host port args...
  local h=$1 p=$2; shift 2
  if [[ -n $pw ]]; then REDISCLI_AUTH=$pw redis-cli -h "$h" -p "$p" "$@"; else redis-cli -h "$h" -p "$p" "$@"; fi
}
waitfor() { # waitfor description command...; polls for 30s
  local what=$1; shift
  for _ in $(seq 300); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.1; done
  echo "timed out waiting for $what" >&2; exit 1
}

for ip in $m $r; do
  d=$work/redis-$ip; mkdir -p "$d"
  {
    echo "bind $ip"; echo "bind-source-addr $ip"; echo "port $rport"; echo "protected-mode no"
    echo "dir $(inner "$d")"; echo "save \"\""; echo "appendonly no"
    echo "replica-announce-ip $ip"
    if [[ -n $pw ]]; then printf 'requirepass "%s"\nmasterauth "%s"\n' "${pw//\"/\\\"}" "${pw//\"/\\\"}"; fi
    if [[ $ip == "$r" ]]; then echo "replicaof $m $rport"; fi
  } >"$d/redis.conf"
  run "$server" "$(inner "$d/redis.conf")" --logfile "$(inner "$d/log")" & pids+=($!)
done
link_up() { cli "$1" $rport info replication | grep -q master_link_status:up; }
waitfor "replica link" link_up $r

i=0
for ip in "${sentinels[@]}"; do
  i=$((i+1)); d=$work/sentinel-$i; mkdir -p "$d"
  myid=$(printf 'redis/redis-%d' $((i-1)) | sha1sum | cut -c1-40)
  {
    echo "bind $ip"; echo "bind-source-addr $ip"; echo "port $sport"; echo "protected-mode no"; echo "dir $(inner "$d")"
    echo "sentinel myid $myid"
    echo "sentinel resolve-hostnames yes"; echo "sentinel announce-hostnames yes"
    echo "sentinel announce-ip $ip"; echo "sentinel announce-port $sport"
    echo "sentinel monitor mymaster $m $rport 2"
    echo "sentinel down-after-milliseconds mymaster 1000"
    echo "sentinel failover-timeout mymaster 10000"
    echo "sentinel parallel-syncs mymaster 1"
    if [[ -n $pw ]]; then printf 'sentinel auth-pass mymaster "%s"\nrequirepass "%s"\nsentinel sentinel-pass "%s"\n' "${pw//\"/\\\"}" "${pw//\"/\\\"}" "${pw//\"/\\\"}"; fi
  } >"$d/sentinel.conf"
  run "$sentinel" "$(inner "$d/sentinel.conf")" --logfile "$(inner "$d/log")" & pids+=($!)
done

knows_all() { # every sentinel sees 2 peers and 1 replica
  for ip in "${sentinels[@]}"; do
    [[ $(cli "$ip" $sport sentinel master mymaster | sed -n '/^num-other-sentinels$/{n;p}') == 2 ]] || return 1
    [[ $(cli "$ip" $sport sentinel master mymaster | sed -n '/^num-slaves$/{n;p}') == 1 ]] || return 1
  done
}
waitfor "sentinels to discover each other" knows_all
for ip in "${sentinels[@]}"; do cli "$ip" $sport sentinel flushconfig >/dev/null; done
for i in 1 2 3; do cp "$work/sentinel-$i/sentinel.conf" "$out/$variant-start-$i.conf"; done

failover_to() { # failover_to new-master-ip old-master-ip
  cli "${sentinels[0]}" $sport sentinel failover mymaster
  all_see() { for ip in "${sentinels[@]}"; do [[ $(cli "$ip" $sport sentinel get-master-addr-by-name mymaster | head -1) == "$1" ]] || return 1; done; }
  waitfor "all sentinels to name $1" all_see "$1"
  waitfor "sentinels to settle" knows_all
  # The old master needs to be reconfigured as a replica before the next failover.
  waitfor "replica link after failover" link_up "$2"
}
failover_to $r $m
failover_to $m $r
# Redis names it master-reboot-down-after-period; Valkey 8 takes that name
# and writes primary-reboot-down-after-period.
for ip in "${sentinels[@]}"; do cli "$ip" $sport sentinel set mymaster master-reboot-down-after-period 60000 >/dev/null; done
for ip in "${sentinels[@]}"; do cli "$ip" $sport sentinel flushconfig >/dev/null; done
for i in 1 2 3; do cp "$work/sentinel-$i/sentinel.conf" "$out/$variant-failover-$i.conf"; done
echo "wrote $out/$variant-*.conf"
