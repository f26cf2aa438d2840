// Package images builds the container images the e2e cluster runs, here,
// without a registry or a container engine: the agent image from this
// repository's source, the pause image from upstream Kubernetes' pause.c, and
// Redis and Valkey images from Debian root filesystems made with mmdebstrap,
// and redis_exporter's from its upstream Go module.
//
// Each image is written as a docker-archive tarball that
// `ctr -n k8s.io images import` loads under the exact reference the
// manifests name, so the manifests run unchanged and nothing is pulled.
// Builds are cached by a hash of everything that goes into them; a second
// Build with nothing changed only reads the cache.
//
// The package owns what goes into each image and the cache; loading the
// tarballs into a node's containerd is the node code's job.
package images
