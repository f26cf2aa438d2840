// Command localkube runs the local e2e cluster in the background and injects
// faults into it: `go run ./e2e/cmd/localkube up`, then kubectl with the
// printed kubeconfig. See e2e/localkube/README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

type cli struct {
	StateDir  string `env:"LOCALKUBE_STATE_DIR" default:"/tmp/localkube" help:"Directory of the cluster's state, logs and control socket."`
	Namespace string `short:"n" env:"LOCALKUBE_NAMESPACE" default:"default" help:"Namespace of the pods named on the command line."`

	Up     upCmd     `cmd:"" help:"Build what is missing, start the cluster in the background, print the kubeconfig path."`
	Serve  serveCmd  `cmd:"" hidden:"" help:"Run the cluster in the foreground (what up starts in the background)."`
	Down   downCmd   `cmd:"" help:"Stop the cluster and wait until everything is torn down."`
	Status statusCmd `cmd:"" help:"Show the components, nodes and pods."`
	Apply  applyCmd  `cmd:"" help:"kubectl apply a file (-f) or a kustomize directory (-k)."`
	Exec   execCmd   `cmd:"" help:"Run a command inside a pod: localkube exec POD -- CMD..."`
	Client clientCmd `cmd:"" help:"Run a command of this machine as an in-cluster client (cluster network and DNS, -n's search path): localkube client -n NS -- redis-cli -h redis-master ping"`

	KillContainer kcCmd       `cmd:"" name:"kill-container" help:"SIGKILL one container of a pod."`
	KillPod       podOp       `cmd:"" name:"kill-pod" help:"SIGKILL every container of a pod and its sandbox (no preStop)."`
	Delete        podOp       `cmd:"" help:"Delete a pod gracefully through the API."`
	Freeze        podOp       `cmd:"" help:"Freeze every process of a pod (cgroup freezer)."`
	Thaw          podOp       `cmd:"" help:"Resume a frozen pod."`
	Partition     podOp       `cmd:"" help:"Drop all traffic between a pod and everything else."`
	Heal          podOp       `cmd:"" help:"Undo partition."`
	CutAPI        podOp       `cmd:"" name:"cut-api" help:"Drop a pod's traffic to the API server."`
	RestoreAPI    podOp       `cmd:"" name:"restore-api" help:"Undo cut-api."`
	StopAPIServer clusterOp   `cmd:"" name:"stop-apiserver" help:"Stop kube-apiserver (etcd and data stay)."`
	StartAPIServ  clusterOp   `cmd:"" name:"start-apiserver" help:"Start kube-apiserver again."`
	DeleteAllPods deleteAllOp `cmd:"" name:"delete-all-pods" help:"Delete every pod of a StatefulSet at once."`
	StopNode      nodeOp      `cmd:"" name:"stop-node" help:"Stop a node's kubelet and containerd (its containers keep running): NotReady, then taint-based eviction."`
	StartNode     nodeOp      `cmd:"" name:"start-node" help:"Start a stopped node's containerd and kubelet again."`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "localkube:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var c cli
	parser, err := kong.New(&c, kong.Name("localkube"),
		kong.Description("Local Kubernetes cluster for the redis-ha-agent e2e tests."),
		kong.UsageOnError(), kong.BindTo(ctx, (*context.Context)(nil)))
	if err != nil {
		return err
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		return err
	}
	return kctx.Run(&c)
}
