#!/usr/bin/env bash
# Regenerates the real-*.conf files: runs a redis-server master + replica and
# three redis-sentinels on 127.0.20.x loopback addresses, lets Sentinel rewrite
# its files, triggers SENTINEL FAILOVER twice (to get epochs), and copies the
# files Sentinel wrote. Usage: testdata/generate.sh [auth]
# With "auth", Redis and Sentinel require a password (auth-pass/requirepass).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
variant=${1:-noauth}
work=$(mktemp -d /tmp/sentinelconf-gen.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

pw=
if [[ $variant == auth ]]; then pw='s3cret "pw"'; fi
rport=6390 sport=26390
# Like pods: each redis-server shares its address with a Sentinel.
m=127.0.20.11 r=127.0.20.12
sentinels=(127.0.20.11 127.0.20.12 127.0.20.13)

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
    echo "dir $d"; echo "save \"\""; echo "appendonly no"
    echo "replica-announce-ip $ip"
    if [[ -n $pw ]]; then printf 'requirepass "%s"\nmasterauth "%s"\n' "${pw//\"/\\\"}" "${pw//\"/\\\"}"; fi
    if [[ $ip == "$r" ]]; then echo "replicaof $m $rport"; fi
  } >"$d/redis.conf"
  redis-server "$d/redis.conf" --logfile "$d/log" & pids+=($!)
done
link_up() { cli "$1" $rport info replication | grep -q master_link_status:up; }
waitfor "replica link" link_up $r

i=0
for ip in "${sentinels[@]}"; do
  i=$((i+1)); d=$work/sentinel-$i; mkdir -p "$d"
  myid=$(printf 'redis/redis-%d' $((i-1)) | sha1sum | cut -c1-40)
  {
    echo "bind $ip"; echo "bind-source-addr $ip"; echo "port $sport"; echo "protected-mode no"; echo "dir $d"
    echo "sentinel myid $myid"
    echo "sentinel resolve-hostnames yes"; echo "sentinel announce-hostnames yes"
    echo "sentinel announce-ip $ip"; echo "sentinel announce-port $sport"
    echo "sentinel monitor mymaster $m $rport 2"
    echo "sentinel down-after-milliseconds mymaster 1000"
    echo "sentinel failover-timeout mymaster 10000"
    echo "sentinel parallel-syncs mymaster 1"
    if [[ -n $pw ]]; then printf 'sentinel auth-pass mymaster "%s"\nrequirepass "%s"\nsentinel sentinel-pass "%s"\n' "${pw//\"/\\\"}" "${pw//\"/\\\"}" "${pw//\"/\\\"}"; fi
  } >"$d/sentinel.conf"
  redis-sentinel "$d/sentinel.conf" --logfile "$d/log" & pids+=($!)
done

knows_all() { # every sentinel sees 2 peers and 1 replica
  for ip in "${sentinels[@]}"; do
    [[ $(cli "$ip" $sport sentinel master mymaster | sed -n '/^num-other-sentinels$/{n;p}') == 2 ]] || return 1
    [[ $(cli "$ip" $sport sentinel master mymaster | sed -n '/^num-slaves$/{n;p}') == 1 ]] || return 1
  done
}
waitfor "sentinels to discover each other" knows_all
for ip in "${sentinels[@]}"; do cli "$ip" $sport sentinel flushconfig >/dev/null; done
for i in 1 2 3; do cp "$work/sentinel-$i/sentinel.conf" "$here/real-$variant-start-$i.conf"; done

failover_to() { # failover_to new-master-ip
  cli "${sentinels[0]}" $sport sentinel failover mymaster
  all_see() { for ip in "${sentinels[@]}"; do [[ $(cli "$ip" $sport sentinel get-master-addr-by-name mymaster | head -1) == "$1" ]] || return 1; done; }
  waitfor "all sentinels to name $1" all_see "$1"
  waitfor "sentinels to settle" knows_all
  # The old master needs to be reconfigured as a replica before the next failover.
  waitfor "replica link after failover" link_up "$2"
}
failover_to $r $m
failover_to $m $r
for ip in "${sentinels[@]}"; do cli "$ip" $sport sentinel flushconfig >/dev/null; done
for i in 1 2 3; do cp "$work/sentinel-$i/sentinel.conf" "$here/real-$variant-failover-$i.conf"; done
echo "wrote $here/real-$variant-*.conf"
