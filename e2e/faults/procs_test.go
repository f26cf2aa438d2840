package faults

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// sentinelPID finds the redis-sentinel process of one pod of this run. A
// container's processes are processes of this machine, in the container's
// namespaces, so /proc shows them: the pod is identified by its agent
// process (POD_NAMESPACE and POD_NAME in its environment, and the namespace
// name carries a random suffix of this run), and the Sentinel is the
// redis-sentinel in the same network namespace (the pod sandbox's).
// Read-only /proc walk.
func sentinelPID(ns, pod string) (int, error) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var netns string
	for _, p := range procs {
		env, err := os.ReadFile(filepath.Join(p, "environ"))
		if err != nil {
			continue
		}
		env = append([]byte{0}, env...) // every variable now follows a NUL
		if bytes.Contains(env, []byte("\x00POD_NAMESPACE="+ns+"\x00")) && bytes.Contains(env, []byte("\x00POD_NAME="+pod+"\x00")) {
			if l, err := os.Readlink(filepath.Join(p, "ns", "net")); err == nil {
				netns = l
				break
			}
		}
	}
	if netns == "" {
		return 0, fmt.Errorf("no agent process with POD_NAMESPACE=%s POD_NAME=%s in /proc", ns, pod)
	}
	for _, p := range procs {
		comm, err := os.ReadFile(filepath.Join(p, "comm"))
		if err != nil || !bytes.HasPrefix(comm, []byte("redis-sentinel")) {
			continue
		}
		if l, err := os.Readlink(filepath.Join(p, "ns", "net")); err == nil && l == netns {
			return strconv.Atoi(filepath.Base(p))
		}
	}
	return 0, fmt.Errorf("no redis-sentinel process in the network namespace %s of pod %s/%s", netns, ns, pod)
}

// agentPIDs maps pod name to the agent sidecar's host PID for every agent
// process of namespace ns (the long-running `run`; init has exited).
func agentPIDs(ns string) map[string]int {
	out := map[string]int{}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmd, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte("redis-ha-agent")) || !bytes.Contains(cmd, []byte("\x00run")) {
			continue
		}
		env, err := os.ReadFile(filepath.Join(p, "environ"))
		env = append([]byte{0}, env...)
		if err != nil || !bytes.Contains(env, []byte("\x00POD_NAMESPACE="+ns+"\x00")) {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if name, ok := bytes.CutPrefix(kv, []byte("POD_NAME=")); ok {
				pid, _ := strconv.Atoi(filepath.Base(p))
				out[string(name)] = pid
			}
		}
	}
	return out
}

func signal(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %v to pid %d: %w", sig, pid, err)
	}
	return nil
}
