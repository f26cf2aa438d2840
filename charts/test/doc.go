// Package charttest renders charts/redis-ha-agent with the Helm SDK and
// checks it against the kustomize overlays under manifests/.
package charttest
