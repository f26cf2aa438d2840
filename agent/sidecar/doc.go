// Package sidecar owns what every mode runs on: the Mode interface the
// HTTP server serves, the Deps a mode acts through, the HTTP server's
// wiring, the reconcile loop's health for /healthz, the preStop gate (only
// a real deletion of this pod may hand its role over), and the
// StatefulSet's expected pod count and pod placement, and the names a
// newer engine announces (availability zone, human-readable node name).
package sidecar
