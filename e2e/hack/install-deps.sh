#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo run for real:
# redis-server/redis-sentinel (integration and e2e), etcd (the local cluster's
# store), iptables (kube-proxy), iproute2 (network namespaces), dnsutils (dig),
# shellcheck (actionlint runs it on the workflows' scripts: e2e/workflows).
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-sentinel >/dev/null || need+=(redis-sentinel)
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v etcd >/dev/null || need+=(etcd-server)
command -v iptables >/dev/null || need+=(iptables)
command -v ip >/dev/null || need+=(iproute2)
command -v dig >/dev/null || need+=(dnsutils)
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
command -v shellcheck >/dev/null || need+=(shellcheck)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "installing ${need[*]}" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Valkey 8.0 (the sentinelconf and nodesconf tests run its servers) comes
# from bookworm-backports, installable beside Redis 7.0.
if ! command -v valkey-sentinel >/dev/null || ! command -v valkey-server >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing valkey-server/valkey-sentinel; run as root or: sudo apt-get install -t bookworm-backports valkey-server valkey-sentinel valkey-tools" >&2
    exit 1
  fi
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > /etc/apt/sources.list.d/bookworm-backports.sources
  fi
  echo "installing valkey-server valkey-sentinel valkey-tools (bookworm-backports)" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends -t bookworm-backports valkey-server valkey-sentinel valkey-tools >/dev/null
fi
# Debian starts the packaged services; the tests run their own instances.
for s in redis-server redis-sentinel valkey-server valkey-sentinel etcd containerd; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$s" 2>/dev/null; then
    systemctl stop "$s" || true
  fi
done
