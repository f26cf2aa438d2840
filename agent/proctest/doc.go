// Package proctest runs the real processes the integration tests of this
// module drive — redis-server, redis-sentinel, etcd with kube-apiserver — on
// loopback addresses, stops each by its PID when the test ends, and polls
// for conditions with a deadline. It also holds the checks the tests of
// both modes share: the engine a reconcile pass reports, the certificate a
// TLS server presents. It is the one harness of every package's tests;
// only tests import it.
//
// A program that is missing fails the test, naming what was looked for and
// how to get it (`bash e2e/hack/install-deps.sh`, `bash
// e2e/hack/build-k8s.sh`): a skipped integration test looks like a passing
// one.
package proctest
