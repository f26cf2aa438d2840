// Package kubelet is the node agent of the local e2e cluster: it plays the
// kubelet for a set of Node names on one machine, running each pod's
// containers as host binaries (no images, no container runtime).
//
// What it owns:
//   - Node objects, their Ready status and their node Leases (heartbeat).
//   - Pods bound to those nodes: network namespace (through PodNetwork),
//     volumes under Config.RootDir, init containers, native sidecars, main
//     containers, probes, restarts with backoff, graceful deletion, and the
//     pod status written through the status subresource.
//   - Fault injection for tests: KillContainer, KillPod, Freeze/Thaw, Exec.
//
// How a container runs: nsenter joins the pod's network namespace, unshare
// gives the container a private mount and UTS namespace, a generated /bin/sh
// prologue bind-mounts the volumes and /etc/{hosts,hostname,resolv.conf},
// changes directory and credentials (setpriv), then execs the mapped host
// binary. The process keeps the same PID across those execs, so the PID the
// kubelet sees is the container's main process, leader of its own process
// group (signals go to the whole group).
//
// Images are not pulled: image.go maps an image plus command to a host
// binary (redis images to the Debian redis binaries, redis-ha-agent images to
// the freshly built agent). A pod that uses a feature this agent does not
// implement is failed with an Event and an UnsupportedPodSpec condition that
// names the feature; nothing is silently ignored (see validate.go for the
// list, and the few accepted-but-not-enforced fields it documents).
//
// Everything written to disk is under Config.RootDir, except mount point
// directories that a volumeMount needs on the shared host root filesystem;
// those are recorded and removed (if still empty) when Run returns.
package kubelet
