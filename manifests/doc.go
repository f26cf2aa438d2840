// Package manifests is the home of the kustomize bases, components and
// overlays that run redis-ha-agent in a plain StatefulSet (see README.md). It
// holds no code; its tests build every kustomization with the kustomize
// library (the engine behind `kubectl kustomize`), decode the result into
// Kubernetes API types and check what the agent relies on: the restricted
// pod security settings, the token only in the agent containers, init and
// native-sidecar ordering, probes and preStop on the agent's port, the grace
// period against the switchover timeout, least-privilege RBAC and the pod
// guard admission policy that narrows it, that every
// environment variable and flag exists in the binary's CLI, and that the
// image built by the Dockerfile is static and called by the manifests at the
// path it is installed to.
package manifests
