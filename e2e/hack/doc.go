// Package hack holds the shell scripts the Makefile runs to set up the
// e2e machine (install-deps.sh, install-image-deps.sh), build what the
// local cluster runs (build-k8s.sh, build-promtool.sh) and report a long
// build's progress (progress.sh). It has no Go code; its tests run the
// scripts that can run without root or a network.
package hack
