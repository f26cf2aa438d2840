package localkube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/kubelet"
)

// startNodes starts the node agent that plays kubelet for Options.Nodes in
// the background; Down stops it (and with it every pod) first.
func (c *Cluster) startNodes(ctx context.Context) error {
	ca, err := os.ReadFile(filepath.Join(c.stateDir, "pki", "ca.crt"))
	if err != nil {
		return fmt.Errorf("read cluster CA for projected service-account volumes: %w", err)
	}
	// Its own client, so a test hammering the API cannot throttle node
	// heartbeats and pod status updates.
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return err
	}
	k, err := kubelet.New(kubelet.Config{
		Client:            cs,
		Nodes:             c.opts.Nodes,
		NodeLabels:        c.opts.NodeLabels,
		Network:           c.Network,
		RootDir:           filepath.Join(c.stateDir, "kubelet"),
		Binaries:          map[string]string{kubelet.BinAgent: c.opts.AgentBinary},
		ClusterDomain:     clusterDomain,
		CACertPEM:         ca,
		HostIP:            gatewayIP,
		KubernetesService: kubernetesSvc + ":443",
		Log:               c.log,
	})
	if err != nil {
		return err
	}
	c.nodes = k
	c.background("kubelet", func() error { return k.Run(ctx) })
	return nil
}

// Kubelet is the node agent, for what the Cluster does not wrap (container
// PIDs, log paths).
func (c *Cluster) Kubelet() *kubelet.Kubelet { return c.nodes }
