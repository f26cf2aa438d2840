#!/usr/bin/env bash
# generate.sh regenerates the real nodes.conf files of one engine in this
# directory, <engine>-<version>-*.conf, by running a small cluster of server
# processes on loopback (127.0.10.x and ::1). It is not run by the tests; the
# files it produced are committed. Run it from anywhere:
#   bash nodesconf/testdata/generate.sh [ROOT]
# ROOT runs the engine from a root filesystem with chroot (as root): a
# directory, or an e2e image tarball (docker-archive, one layer) such as
# ~/.cache/redis-ha-agent-e2e/images/valkey-8.1-*.tar, extracted to a temp
# dir. Without ROOT the host's redis-server runs. The engine is Valkey when
# ROOT has valkey-server, else Redis; ENGINE=redis|valkey overrides
# (ENGINE=valkey for the host's bookworm-backports valkey-server).
set -euo pipefail

out=$(cd "$(dirname "$0")" && pwd)
root=${1:-}
work=
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
	if [[ -n $work ]]; then rm -rf "$work"; fi
	if [[ -n ${extracted:-} ]]; then rm -rf "$extracted"; fi
}
trap cleanup EXIT

if [[ -f $root ]]; then
	extracted=$(mktemp -d /tmp/nodesconf-root.XXXXXX)
	tar -xOf "$root" --wildcards '*.tar.gz' | tar -xz -C "$extracted"
	# The image has no device nodes (the runtime mounts /dev).
	mknod -m 666 "$extracted/dev/null" c 1 3
	mknod -m 666 "$extracted/dev/urandom" c 1 9
	root=$extracted
fi
# run execs, so that the pid of "run ... &" is the server's own: only call it
# in a subshell (& or $(...)).
run() { if [[ -n $root ]]; then exec chroot "$root" "$@"; else exec "$@"; fi; }
engine=${ENGINE:-}
if [[ -z $engine ]]; then if [[ -n $root && -x $root/usr/bin/valkey-server ]]; then engine=valkey; else engine=redis; fi; fi
ver=$(run "$engine-server" --version | sed -n 's/.* v=\([0-9.]*\) .*/\1/p')
prefix=$engine-$ver
# Work inside ROOT, so that the paths in the config are the ones the server
# sees; inner() is such a path as seen from inside.
work=$(mktemp -d "$root/tmp/nodesconf-gen.XXXXXX")
chmod 755 "$work"
inner() { echo "${1#"$root"}"; }
# Lines only newer engines take: a human-readable node name (Redis 7.2+,
# Valkey) and the address announced to clients (Valkey 8).
n2extra=() n3extra=()
if [[ $prefix != redis-7.0.* ]]; then n2extra=("cluster-announce-human-nodename node-2"); fi
if [[ $engine == valkey ]]; then n3extra=("cluster-announce-client-ipv4 127.0.10.3"); fi

# start <name> <ip> <port> [extra redis.conf lines...]
start() {
	local name=$1 ip=$2 port=$3
	shift 3
	mkdir -p "$work/$name"
	{
		echo "port $port"
		echo "bind $ip"
		[[ $ip == *:* ]] || echo "bind-source-addr $ip"
		echo "protected-mode no"
		echo "cluster-enabled yes"
		echo "cluster-node-timeout 1000"
		echo "cluster-config-file $(inner "$work/$name/nodes.conf")"
		echo "dir $(inner "$work/$name")"
		echo "save ''"
		echo "appendonly no"
		echo "logfile $(inner "$work/$name/redis.log")"
		for l in "$@"; do echo "$l"; done
	} >"$work/$name/redis.conf"
	run "$engine-server" "$(inner "$work/$name/redis.conf")" &
	pids+=($!)
	until redis-cli -h "$ip" -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
}
cli() { local ip=$1 port=$2; shift 2; redis-cli -h "$ip" -p "$port" "$@"; }
id() { cli "$1" "$2" cluster myid; }
# wait_for <seconds> <cmd...>: poll until cmd succeeds or the deadline passes.
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@"; do
		((SECONDS < deadline)) || { echo "timed out: $*" >&2; exit 1; }
		sleep 0.1
	done
}

P=7010
# n1..n3 masters, n4 replica of n1, n5 replica of n2 (nofailover), n6 a
# slot-less master without a hostname that is killed to become "fail".
start n1 127.0.10.1 $P "cluster-announce-hostname node-1.test"
cp "$work/n1/nodes.conf" "$out/$prefix-fresh.conf"
start n2 127.0.10.2 $P "cluster-announce-hostname node-2.test" "${n2extra[@]}"
start n3 127.0.10.3 $P "cluster-announce-hostname node-3.test" "${n3extra[@]}"
start n4 127.0.10.4 $P "cluster-announce-hostname node-4.test"
start n5 127.0.10.5 $P "cluster-announce-hostname node-5.test" "cluster-replica-no-failover yes"
start n6 127.0.10.6 $P
for i in 2 3 4 5 6; do cli 127.0.10.$i $P cluster meet 127.0.10.1 $P >/dev/null; done
cli 127.0.10.1 $P cluster addslotsrange 0 5460 16383 16383 >/dev/null
cli 127.0.10.2 $P cluster addslotsrange 5461 10921 >/dev/null
cli 127.0.10.3 $P cluster addslotsrange 10922 16382 >/dev/null
known() { [[ $(cli 127.0.10.$1 $P cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p') == 6 ]]; }
for i in 1 2 3 4 5 6; do wait_for 20 known $i; done
cli 127.0.10.4 $P cluster replicate "$(id 127.0.10.1 $P)" >/dev/null
cli 127.0.10.5 $P cluster replicate "$(id 127.0.10.2 $P)" >/dev/null
# Slot 93 moves from n1 to n2 (stopped half way); slot 5500 from n2 to n3.
cli 127.0.10.2 $P cluster setslot 93 importing "$(id 127.0.10.1 $P)" >/dev/null
cli 127.0.10.1 $P cluster setslot 93 migrating "$(id 127.0.10.2 $P)" >/dev/null
cli 127.0.10.3 $P cluster setslot 5500 importing "$(id 127.0.10.2 $P)" >/dev/null
cli 127.0.10.2 $P cluster setslot 5500 migrating "$(id 127.0.10.3 $P)" >/dev/null
ok() { cli 127.0.10.$1 $P cluster info | grep -q '^cluster_state:ok'; }
for i in 1 2 3 4 5 6; do wait_for 20 ok $i; done
slave() { cli 127.0.10.$1 $P cluster nodes | grep -q "$(id 127.0.10.$2 $P) .*slave"; }
for i in 1 2 3 6; do wait_for 20 slave $i 4; wait_for 20 slave $i 5; done
hostnames() { [[ $(cli 127.0.10.$1 $P cluster nodes | grep -c ',node-') == 5 ]]; }
for i in 1 2 3 4 5 6; do wait_for 20 hostnames $i; done
for i in 1 2 3 4 5 6; do cli 127.0.10.$i $P cluster saveconfig >/dev/null; done
cp "$work/n6/nodes.conf" "$out/$prefix-no-hostname.conf"

# n6 dies; the others flag it fail.
n6=$(id 127.0.10.6 $P)
kill -9 "${pids[5]}"
failed() { cli 127.0.10.$1 $P cluster nodes | grep -q "^$n6 .*fail[^?]"; }
for i in 1 2 3 4 5; do wait_for 20 failed $i; done
for i in 1 2 3 4 5; do cli 127.0.10.$i $P cluster saveconfig >/dev/null; done
cp "$work/n1/nodes.conf" "$out/$prefix-master-migrating.conf"
cp "$work/n2/nodes.conf" "$out/$prefix-master-importing-migrating.conf"
cp "$work/n3/nodes.conf" "$out/$prefix-master-importing.conf"
cp "$work/n4/nodes.conf" "$out/$prefix-replica.conf"
cp "$work/n5/nodes.conf" "$out/$prefix-replica-nofailover.conf"

# IPv6: 7.0 writes the address without brackets (::1:7011@17011).
start v1 ::1 7011 "cluster-announce-hostname node-v1.test"
start v2 ::1 7012
cli ::1 7012 cluster meet ::1 7011 >/dev/null
cli ::1 7011 cluster addslotsrange 0 16383 >/dev/null
v6known() { [[ $(cli ::1 7011 cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p') == 2 ]] &&
	cli ::1 7012 cluster nodes | grep -q ',node-v1.test'; }
wait_for 20 v6known
cli ::1 7012 cluster replicate "$(id ::1 7011)" >/dev/null
v6slave() { cli ::1 7011 cluster nodes | grep -q "$(id ::1 7012) .*slave"; }
wait_for 20 v6slave
for p in 7011 7012; do cli ::1 $p cluster saveconfig >/dev/null; done
cp "$work/v1/nodes.conf" "$out/$prefix-ipv6-master.conf"
cp "$work/v2/nodes.conf" "$out/$prefix-ipv6-replica.conf"
echo "wrote $(ls "$out/$prefix"-*.conf | wc -l) files to $out"
