package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"

	"github.com/alecthomas/kong"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

func daemonStatus(ctx context.Context, g *cli) (*localkube.Client, localkube.Status, error) {
	cl := localkube.NewClient(g.StateDir)
	s, err := cl.Status(ctx)
	if err != nil {
		return nil, s, fmt.Errorf("%w (no daemon answers on %s)", errNoDaemon, localkube.SocketPath(g.StateDir))
	}
	return cl, s, nil
}

type statusCmd struct{}

func (statusCmd) Run(ctx context.Context, g *cli) error {
	_, s, err := daemonStatus(ctx, g)
	if err != nil {
		return err
	}
	fmt.Printf("cluster %s: %s (daemon pid %d)\n", s.RunID, s.State, s.PID)
	if s.Error != "" {
		fmt.Println("error:", s.Error)
	}
	fmt.Println("kubeconfig:", s.Kubeconfig)
	fmt.Println("kubectl:   ", s.Kubectl)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCOMPONENT\tPID\tRUNNING\tEXIT")
	for _, c := range s.Components {
		fmt.Fprintf(tw, "%s\t%d\t%v\t%s\n", c.Name, c.PID, c.Running, c.Exit)
	}
	if len(s.Faults) > 0 {
		fmt.Fprintln(tw, "\nFAULT\tPOD\tIP")
		for _, f := range s.Faults {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Fault, f.Pod, f.IP)
		}
	}
	tw.Flush()
	if s.Kubeconfig == "" {
		return nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes (is the API server stopped?): %w", err)
	}
	fmt.Fprintln(tw, "\nNODE\tREADY")
	for _, n := range nodes.Items {
		ready := "Unknown"
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = string(c.Status)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\n", n.Name, ready)
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintln(tw, "\nNAMESPACE\tPOD\tPHASE\tIP\tNODE")
	for _, p := range pods.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Namespace, p.Name, p.Status.Phase, p.Status.PodIP, p.Spec.NodeName)
	}
	return tw.Flush()
}

type applyCmd struct {
	File      string `short:"f" xor:"src" required:"" help:"Manifest file (or - for stdin)."`
	Kustomize string `short:"k" xor:"src" required:"" help:"Kustomize directory."`
}

// Run applies with kubectl and the cluster's kubeconfig, exactly as a user
// would; the daemon is not involved.
func (a *applyCmd) Run(ctx context.Context, g *cli) error {
	_, s, err := daemonStatus(ctx, g)
	if err != nil {
		return err
	}
	if s.State != localkube.StateReady {
		return fmt.Errorf("cluster is %s, not ready", s.State)
	}
	args := []string{"--kubeconfig", s.Kubeconfig, "apply", "--server-side", "--force-conflicts", "-n", g.Namespace}
	if a.File != "" {
		args = append(args, "-f", a.File)
	} else {
		args = append(args, "-k", a.Kustomize)
	}
	cmd := exec.CommandContext(ctx, s.Kubectl, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

type execCmd struct {
	Container string   `short:"c" help:"Container (default: the pod's first container)."`
	Pod       string   `arg:"" help:"Pod name."`
	Cmd       []string `arg:"" passthrough:"" help:"Command and arguments (after --)."`
}

func (e *execCmd) Run(ctx context.Context, g *cli) error {
	cmd := e.Cmd
	if len(cmd) > 0 && cmd[0] == "--" {
		cmd = cmd[1:]
	}
	if len(cmd) == 0 {
		return fmt.Errorf("no command given: use localkube exec %s -- CMD", e.Pod)
	}
	return doOp(ctx, g, localkube.Op{Op: "exec", Namespace: g.Namespace, Pod: e.Pod, Container: e.Container, Cmd: cmd})
}

type kcCmd struct {
	Pod       string `arg:""`
	Container string `arg:""`
}

func (k *kcCmd) Run(ctx context.Context, g *cli) error {
	return doOp(ctx, g, localkube.Op{Op: "kill-container", Namespace: g.Namespace, Pod: k.Pod, Container: k.Container})
}

type podOp struct {
	Pod string `arg:"" help:"Pod name."`
}

func (p *podOp) Run(ctx context.Context, g *cli, kctx *kong.Context) error {
	return doOp(ctx, g, localkube.Op{Op: opName(kctx), Namespace: g.Namespace, Pod: p.Pod})
}

type clusterOp struct{}

func (clusterOp) Run(ctx context.Context, g *cli, kctx *kong.Context) error {
	return doOp(ctx, g, localkube.Op{Op: opName(kctx)})
}

type deleteAllOp struct {
	StatefulSet string `arg:"" help:"StatefulSet name."`
}

func (d *deleteAllOp) Run(ctx context.Context, g *cli) error {
	return doOp(ctx, g, localkube.Op{Op: "delete-all-pods", Namespace: g.Namespace, Name: d.StatefulSet})
}

func doOp(ctx context.Context, g *cli, op localkube.Op) error {
	cl, _, err := daemonStatus(ctx, g)
	if err != nil {
		return err
	}
	r, err := cl.Do(ctx, op)
	fmt.Print(r.Stdout)
	fmt.Fprint(os.Stderr, r.Stderr)
	return err
}

// opName is the daemon operation of a command: its name on the command line.
func opName(k *kong.Context) string { return strings.Fields(k.Command())[0] }

type nodeOp struct {
	Node string `arg:"" help:"Node name (node-a, node-b, node-c)."`
}

func (n *nodeOp) Run(ctx context.Context, g *cli, kctx *kong.Context) error {
	return doOp(ctx, g, localkube.Op{Op: opName(kctx), Name: n.Node})
}
