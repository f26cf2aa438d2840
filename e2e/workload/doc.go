// Package workload drives Redis the way an application would during a fault
// and judges the outcome afterwards, Jepsen-style: a Writer records every
// attempt (key, start, end, outcome, replica acknowledgements), a Sampler
// records every pod's role, fencing (or, with ProbeWrites, whether a probe
// write to the pod itself — in cluster mode, to one of the slots it claims —
// was accepted) and role label about every 100 ms, re-sampling every pod
// the moment one turns writable, and the pure Check and Analyze functions
// turn those records into figures: acknowledged writes lost, writes that
// landed without an acknowledgement, the longest write gap, when the master
// moved, and any instant with two writable masters, to the oracle's stated
// Resolution.
//
// Everything that talks to Redis or Kubernetes stops by itself when its
// context ends; the judging functions take plain values so they are table
// tested on synthetic histories.
package workload
