package localkube

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// RunTests is the body of an e2e package's TestMain: it starts a cluster,
// passes it to use (store it in the test package), runs the tests and tears
// the cluster down — also when a signal arrives mid-run, after which the
// signal is re-raised so the exit status stays honest. With an empty
// Options.StateDir a fresh temporary directory is used (so packages can run
// in parallel) and removed after a passing run; after a failure, or with
// LOCALKUBE_KEEP_LOGS=1 in the environment, it stays for its logs.
//
// With E2E_KUBECONFIG set, the tests run against that existing cluster
// instead (see Attach); tests whose faults need the local nodes are
// listed as NOT RUN at the end.
func RunTests(m *testing.M, opts Options, use func(*Cluster)) int {
	tmp := opts.StateDir == ""
	if tmp {
		dir, err := os.MkdirTemp("", "localkube-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "localkube:", err)
			return 1
		}
		opts.StateDir = dir
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	upDone := make(chan struct{})
	go func() {
		select {
		case <-upDone:
			return
		case <-sigs:
			cancel() // Up tears down what it started when its ctx ends
		}
	}()
	start := time.Now()
	var c *Cluster
	var err error
	if kc := externalKubeconfig(); kc != "" {
		c, err = Attach(ctx, kc, opts.Log)
	} else {
		c, err = Up(ctx, opts)
	}
	close(upDone)
	if err != nil {
		fmt.Fprintf(os.Stderr, "localkube: up failed after %s: %v\n(logs in %s/logs)\n", time.Since(start).Round(time.Millisecond), err, opts.StateDir)
		return 1
	}
	fmt.Fprintf(os.Stderr, "localkube: cluster %s up in %s (%s)\n", c.RunID, time.Since(start).Round(time.Millisecond), formatTimings(c.Timings))
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		_ = c.Down(context.Background())
		signal.Reset(sig)
		_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
	}()
	use(c)
	code := m.Run()
	printNotRun(os.Stderr)
	printBaselinesNotRun(os.Stderr)
	if err := c.Down(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "localkube: down:", err)
		if code == 0 {
			code = 1
		}
	}
	keep := code != 0 || os.Getenv("LOCALKUBE_KEEP_LOGS") != ""
	if tmp {
		_ = unmountUnder(opts.StateDir)
	}
	if tmp && !keep {
		_ = os.RemoveAll(opts.StateDir)
	} else if keep {
		fmt.Fprintf(os.Stderr, "localkube: logs kept in %s/logs\n", opts.StateDir)
	}
	return code
}

func formatTimings(ps []Phase) string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %s", p.Name, p.Duration.Round(time.Millisecond))
	}
	return s
}
