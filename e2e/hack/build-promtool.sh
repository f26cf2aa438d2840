#!/usr/bin/env bash
# Builds promtool (Prometheus' rule checker and rule unit tester) from its
# upstream Go module into the e2e cache, keyed by version, and prints its
# path. e2e/monitoring runs it on the alert rules of
# manifests/components/monitoring. A second run with the binary present
# does nothing; make test builds it in its first phase, beside the
# Kubernetes binaries, so the e2e phase finds it.
#
# Usage: build-promtool.sh [CACHE_DIR]   (prints the promtool path)
set -euo pipefail
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-v0.316.0} # Prometheus 3.16.0
cache=${1:-${REDIS_HA_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-ha-agent-e2e}}
dir="$cache/promtool-$PROMETHEUS_VERSION"
bin="$dir/promtool"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$dir"
# A second caller waits for the first one's build and then finds it.
exec 9>"$dir/.lock"
flock 9
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
tmp=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "building promtool $PROMETHEUS_VERSION (github.com/prometheus/prometheus/cmd/promtool)" >&2
start=$(date +%s)
# remove_all_sd leaves out Prometheus' service-discovery plugins (AWS,
# Azure, GCE, Kubernetes, ...), which only `promtool check config` and
# `check service-discovery` use: half the CPU time and module downloads of
# a full build (measured cold: 5.0 against 10.3 CPU minutes, 0.96 against
# 1.8 GB of modules).
GOBIN="$tmp" GOFLAGS= go install -trimpath -tags remove_all_sd -ldflags "-s -w" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" >&2
mv "$tmp/promtool" "$bin"
echo "built promtool in $(( $(date +%s) - start ))s" >&2
echo "$bin"
