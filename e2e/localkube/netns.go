package localkube

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// netnsDir is where `ip netns add` bind-mounts named namespaces.
const netnsDir = "/run/netns"

// namespace is a named network namespace created with `ip netns add`, so it
// outlives the processes inside it and shows up in `ip netns list`.
type namespace struct {
	name string
}

func (n namespace) path() string { return filepath.Join(netnsDir, n.name) }

func createNamespace(ctx context.Context, name string) (namespace, error) {
	if err := run(ctx, "ip", "netns", "add", name); err != nil {
		return namespace{}, err
	}
	ns := namespace{name: name}
	if err := ns.run(ctx, "ip", "link", "set", "lo", "up"); err != nil {
		return ns, err
	}
	return ns, nil
}

func (n namespace) delete(ctx context.Context) error {
	return run(ctx, "ip", "netns", "delete", n.name)
}

// run executes a command inside the namespace.
func (n namespace) run(ctx context.Context, name string, args ...string) error {
	return run(ctx, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// do runs fn on an OS thread switched into the namespace. Sockets keep the
// namespace they were created in, so a connection dialled inside fn stays in
// the namespace after the thread switches back. If switching back fails the
// thread stays locked and Go discards it with the goroutine, so no other
// goroutine ever runs in the wrong namespace.
func (n namespace) do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current network namespace: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(n.path())
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open network namespace %s: %w", n.path(), err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", n.path(), err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("return from network namespace %s: %w", n.path(), err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// dial opens a connection from inside the namespace. addr must hold an IP
// literal: name resolution would run on other threads, outside the namespace.
func (n namespace) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := n.do(func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		conn = c
		return err
	})
	return conn, err
}

// run executes a short helper command and returns its combined output in the
// error, since that output is the only explanation `ip` and `iptables` give.
func run(ctx context.Context, name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// output executes a short helper command and returns its stdout.
func output(ctx context.Context, name string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}
