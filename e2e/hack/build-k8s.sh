#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries the local cluster runs (and a
# kubectl of the same version, so CI needs no separate client), from
# their upstream Go modules, into a cache directory keyed by version. A second
# run with the binaries present does nothing.
#
# Usage: build-k8s.sh [CACHE_DIR]   (prints the bin directory)
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.34.4}
COREDNS_VERSION=${COREDNS_VERSION:-v1.12.4}
cache=${1:-${REDIS_HA_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-ha-agent-e2e}}
bin="$cache/k8s-$K8S_VERSION-coredns-$COREDNS_VERSION/bin"
want=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl coredns)
missing=()
for b in "${want[@]}"; do [ -x "$bin/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then echo "$bin"; exit 0; fi

mod="$cache/k8s-$K8S_VERSION-mod"
mkdir -p "$mod" "$bin"
# Test packages run in parallel and each may start a cluster: one builds,
# the others wait for the lock and then find the binaries present.
exec 9>"$cache/.build.lock"
flock 9
missing=()
for b in "${want[@]}"; do [ -x "$bin/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then echo "$bin"; exit 0; fi
staging="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller"
staging_version="v0${K8S_VERSION#v1}"
{
  echo "module localkube/k8sbuild"
  echo
  echo "go 1.24"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  for s in $staging; do echo "replace k8s.io/$s => k8s.io/$s $staging_version"; done
} > "$mod/go.mod"
cd "$mod"
export GOFLAGS=-mod=mod CGO_ENABLED=0
for b in "${missing[@]}"; do
  [ "$b" = coredns ] && continue
  echo "building $b $K8S_VERSION" >&2
  start=$(date +%s)
  go get "k8s.io/kubernetes/cmd/$b@$K8S_VERSION" >&2
  go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" -o "$bin/$b.tmp" "k8s.io/kubernetes/cmd/$b" >&2
  mv "$bin/$b.tmp" "$bin/$b"
  echo "built $b in $(( $(date +%s) - start ))s" >&2
done
if [ ! -x "$bin/coredns" ]; then
  echo "building coredns $COREDNS_VERSION" >&2
  start=$(date +%s)
  GOBIN="$bin" go install "github.com/coredns/coredns@$COREDNS_VERSION" >&2
  echo "built coredns in $(( $(date +%s) - start ))s" >&2
fi
echo "$bin"
