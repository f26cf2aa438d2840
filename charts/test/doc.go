// Package charttest renders charts/redis-ha-agent with the Helm v4 SDK
// (Render) and, in its tests, checks it against the kustomize overlays
// under manifests/ and runs helm lint. cmd/render prints a rendering for
// the e2e tests, which cannot import Helm (their module stays on older
// k8s.io versions).
package charttest
