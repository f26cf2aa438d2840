package kubelet

import (
	"context"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
)

// dialInNetNS opens a connection from inside the network namespace at path.
// The socket is created on an OS thread switched into that namespace and
// stays bound to it after the thread switches back, so the returned
// connection can be used from any goroutine.
func dialInNetNS(ctx context.Context, path, network, addr string) (net.Conn, error) {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter network namespace %s: %w", path, err)
	}
	var d net.Dialer
	conn, dialErr := d.DialContext(ctx, network, addr)
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it when this
		// goroutine ends, so no other goroutine runs in the pod's netns.
		if conn != nil {
			_ = conn.Close()
		}
		return nil, fmt.Errorf("return from network namespace %s: %w", path, err)
	}
	runtime.UnlockOSThread()
	return conn, dialErr
}
