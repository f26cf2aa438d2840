// Package kubeapi owns the agent's access to the Kubernetes API: the REST
// config (kubeconfig or the pod's service account), the four typed clients
// the agent uses (core, apps, coordination, events) built like the
// clientset builds them, the Event recorder, and the few calls both modes
// make on pods and StatefulSets.
package kubeapi
