package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// clientCmd runs a program of this machine as an in-cluster client: in the
// cluster network, with a resolv.conf that asks CoreDNS through the
// kube-dns Service and searches the namespace's domains, so `redis-cli -h
// redis-master` or a benchmark reaches Services and pod DNS names exactly
// as an application pod would. The resolv.conf is bind-mounted in a private
// mount namespace, so the host's stays untouched.
type clientCmd struct {
	Cmd []string `arg:"" passthrough:"" help:"Command and arguments (after --)."`
}

func (c *clientCmd) Run(ctx context.Context, g *cli) error {
	cmd := c.Cmd
	if len(cmd) > 0 && cmd[0] == "--" {
		cmd = cmd[1:]
	}
	if len(cmd) == 0 {
		return errors.New("no command given: use localkube client -- CMD")
	}
	_, s, err := daemonStatus(ctx, g)
	if err != nil {
		return err
	}
	if s.RunID == "" {
		return fmt.Errorf("the cluster in %s is %s, not running", g.StateDir, s.State)
	}
	resolv := filepath.Join(g.StateDir, "client-resolv-"+g.Namespace+".conf")
	conf := fmt.Sprintf("nameserver 10.96.0.10\nsearch %s.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n", g.Namespace)
	if err := os.WriteFile(resolv, []byte(conf), 0o644); err != nil {
		return err
	}
	args := append([]string{"--net=/run/netns/lk-" + s.RunID + "-cluster", "--", "unshare", "--mount", "--",
		"sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv}, cmd...)
	p := exec.CommandContext(ctx, "nsenter", args...)
	p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := p.Run(); err != nil {
		return fmt.Errorf("%v: %w", cmd, err)
	}
	return nil
}
