#!/usr/bin/env bash
# Builds the Kubernetes binaries the local cluster runs — the control plane,
# the kubelet of every node, and a kubectl of the same version, so CI needs no
# separate client — plus CoreDNS and the CNI plugins the nodes' containerd
# calls (bridge, host-local, loopback, portmap), from their upstream Go
# modules, into a cache directory keyed by version. A second run with the
# binaries present does nothing. Progress goes to stderr, one line per binary.
#
# Usage: build-k8s.sh [CACHE_DIR]   (prints the bin directory)
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.34.4}
COREDNS_VERSION=${COREDNS_VERSION:-v1.12.4}
CNI_PLUGINS_VERSION=${CNI_PLUGINS_VERSION:-v1.10.0}
CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
cni_plugins=(bridge host-local loopback portmap)
cache=${1:-${REDIS_HA_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-ha-agent-e2e}}
bin="$cache/k8s-$K8S_VERSION-coredns-$COREDNS_VERSION/bin"
want=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl coredns crictl)
for p in "${cni_plugins[@]}"; do want+=("cni-$CNI_PLUGINS_VERSION/$p"); done
# CoreDNS with only the plugins the local cluster's Corefile uses
# (e2e/localkube corefile()), in the order of upstream plugin.cfg (which is
# the order they handle a query): about 740 packages instead of 1,280 — no cloud
# provider SDKs, tracing or etcd client to download and compile. The stamp
# names the plugin set, so a binary built with another set is rebuilt.
coredns_plugins="ready health errors kubernetes" # upstream plugin.cfg order
coredns_stamp="$bin/coredns.plugins"
find_missing() {
  missing=()
  for b in "${want[@]}"; do [ -x "$bin/$b" ] || missing+=("$b"); done
  if [ -x "$bin/coredns" ] && [ "$(cat "$coredns_stamp" 2>/dev/null)" != "$coredns_plugins" ]; then
    missing+=(coredns)
  fi
}
find_missing
if [ ${#missing[@]} -eq 0 ]; then echo "$bin"; exit 0; fi

mod="$cache/k8s-$K8S_VERSION-mod"
mkdir -p "$mod" "$bin"
# Test packages run in parallel and each may start a cluster: one builds,
# the others wait for the lock and then find the binaries present.
exec 9>"$cache/.build.lock"
flock 9
find_missing
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
  case $b in coredns|crictl|cni-*) continue ;; esac
  echo "building $b $K8S_VERSION" >&2
  start=$(date +%s)
  go get "k8s.io/kubernetes/cmd/$b@$K8S_VERSION" >&2
  go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" -o "$bin/$b.tmp" "k8s.io/kubernetes/cmd/$b" >&2
  mv "$bin/$b.tmp" "$bin/$b"
  echo "built $b in $(( $(date +%s) - start ))s" >&2
done
if [[ " ${missing[*]} " == *" coredns "* ]]; then
  echo "building coredns $COREDNS_VERSION (plugins: $coredns_plugins)" >&2
  start=$(date +%s)
  dnsmod="$cache/coredns-$COREDNS_VERSION-mod"
  mkdir -p "$dnsmod"
  printf 'module localkube/corednsbuild\n\ngo 1.24\n' > "$dnsmod/go.mod"
  {
    echo "// CoreDNS's own main with a plugin set chosen at compile time, as"
    echo "// CoreDNS documents for custom builds. Written by build-k8s.sh."
    echo "package main"
    echo
    echo "import ("
    echo "	\"github.com/coredns/coredns/core/dnsserver\""
    echo "	\"github.com/coredns/coredns/coremain\""
    for p in $coredns_plugins; do echo "	_ \"github.com/coredns/coredns/plugin/$p\""; done
    echo ")"
    echo
    printf 'func init() { dnsserver.Directives = []string{'
    for p in $coredns_plugins; do printf '"%s", ' "$p"; done
    echo '} }'
    echo
    echo "func main() { coremain.Run() }"
  } > "$dnsmod/main.go"
  (
    cd "$dnsmod"
    go get "github.com/coredns/coredns@$COREDNS_VERSION" >&2
    go build -trimpath -ldflags "-s -w" -o "$bin/coredns.tmp" . >&2
  )
  mv "$bin/coredns.tmp" "$bin/coredns"
  echo "$coredns_plugins" > "$coredns_stamp"
  echo "built coredns in $(( $(date +%s) - start ))s" >&2
fi
if [ ! -x "$bin/crictl" ]; then
  echo "building crictl $CRI_TOOLS_VERSION" >&2
  start=$(date +%s)
  GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION" >&2
  echo "built crictl in $(( $(date +%s) - start ))s" >&2
fi
if [ ! -x "$bin/cni-$CNI_PLUGINS_VERSION/portmap" ] || [ ! -x "$bin/cni-$CNI_PLUGINS_VERSION/bridge" ] || [ ! -x "$bin/cni-$CNI_PLUGINS_VERSION/host-local" ] || [ ! -x "$bin/cni-$CNI_PLUGINS_VERSION/loopback" ]; then
  echo "building CNI plugins $CNI_PLUGINS_VERSION (${cni_plugins[*]})" >&2
  start=$(date +%s)
  cnimod="$cache/cni-$CNI_PLUGINS_VERSION-mod"
  mkdir -p "$cnimod" "$bin/cni-$CNI_PLUGINS_VERSION"
  printf 'module localkube/cnibuild\n\ngo 1.24\n' > "$cnimod/go.mod"
  (
    cd "$cnimod"
    go get "github.com/containernetworking/plugins@$CNI_PLUGINS_VERSION" >&2
    for p in "${cni_plugins[@]}"; do
      dir=main
      [ "$p" = host-local ] && dir=ipam
      [ "$p" = portmap ] && dir=meta
      go build -trimpath -ldflags "-s -w" -o "$bin/cni-$CNI_PLUGINS_VERSION/$p.tmp" "github.com/containernetworking/plugins/plugins/$dir/$p" >&2
      mv "$bin/cni-$CNI_PLUGINS_VERSION/$p.tmp" "$bin/cni-$CNI_PLUGINS_VERSION/$p"
    done
  )
  echo "built CNI plugins in $(( $(date +%s) - start ))s" >&2
fi
echo "$bin"
