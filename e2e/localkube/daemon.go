package localkube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The daemon keeps a cluster running for the CLI: `localkube up` starts it in
// the background, and every later command talks to it over HTTP on a unix
// socket in the state dir. It runs exactly the code tests run in-process.

// SocketPath is the daemon's control socket for a state dir.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, "control.sock") }

// Daemon states reported by /status.
const (
	StateStarting = "starting"
	StateReady    = "ready"
	StateFailed   = "failed"
	StateStopping = "stopping"
)

// Status is the daemon's /status answer.
type Status struct {
	State      string            `json:"state"`
	Error      string            `json:"error,omitempty"`
	PID        int               `json:"pid"`
	RunID      string            `json:"runID,omitempty"`
	Kubeconfig string            `json:"kubeconfig,omitempty"`
	Kubectl    string            `json:"kubectl,omitempty"`
	Timings    []Phase           `json:"timings"`
	Components []ComponentStatus `json:"components,omitempty"`
	Faults     []PodFault        `json:"faults,omitempty"`
}

// ComponentStatus describes one control-plane process.
type ComponentStatus struct {
	Name    string `json:"name"`
	PID     int    `json:"pid"`
	Running bool   `json:"running"`
	Exit    string `json:"exit,omitempty"`
}

// Op is one operation the CLI asks the daemon to run on the cluster.
type Op struct {
	Op        string   `json:"op"`
	Namespace string   `json:"namespace,omitempty"`
	Pod       string   `json:"pod,omitempty"`
	Container string   `json:"container,omitempty"`
	Name      string   `json:"name,omitempty"` // StatefulSet for delete-all-pods
	Cmd       []string `json:"cmd,omitempty"`
}

// OpResult is the answer to an Op.
type OpResult struct {
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Components reports the control-plane processes.
func (c *Cluster) Components() []ComponentStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ComponentStatus
	for _, name := range []string{compEtcd, compAPIServer, compController, compScheduler, compCoreDNS, compKubeProxy} {
		p := c.procs[name]
		if p == nil {
			out = append(out, ComponentStatus{Name: name, Exit: "stopped"})
			continue
		}
		s := ComponentStatus{Name: name, PID: p.cmd.Process.Pid, Running: !p.exited()}
		if err := p.exitError(); err != nil {
			s.Exit = err.Error()
		}
		out = append(out, s)
	}
	return out
}

// Do runs one Op; the CLI's fault and exec commands all end up here.
func (c *Cluster) Do(ctx context.Context, op Op) OpResult {
	var out, errOut bytes.Buffer
	var err error
	ns, pod := op.Namespace, op.Pod
	if ns == "" {
		ns = "default"
	}
	switch op.Op {
	case "exec":
		err = c.Exec(ctx, ns, pod, op.Container, op.Cmd, &out, &errOut)
	case "kill-container":
		err = c.KillContainer(ns, pod, op.Container)
	case "kill-pod":
		err = c.KillPod(ns, pod)
	case "delete":
		err = c.DeletePod(ctx, ns, pod)
	case "freeze":
		err = c.Freeze(ns, pod)
	case "thaw":
		err = c.Thaw(ns, pod)
	case "partition":
		err = c.Partition(ctx, ns, pod)
	case "heal":
		err = c.Heal(ctx, ns, pod)
	case "cut-api":
		err = c.CutAPI(ctx, ns, pod)
	case "restore-api":
		err = c.RestoreAPI(ctx, ns, pod)
	case "stop-apiserver":
		err = c.StopAPIServer(ctx)
	case "start-apiserver":
		err = c.StartAPIServer(ctx)
	case "stop-node":
		err = c.StopNode(ctx, op.Name)
	case "start-node":
		err = c.StartNode(ctx, op.Name)
	case "delete-all-pods":
		err = c.DeleteAllPods(ctx, ns, op.Name)
	default:
		err = fmt.Errorf("unknown operation %q", op.Op)
	}
	r := OpResult{Stdout: out.String(), Stderr: errOut.String()}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

type daemon struct {
	mu      sync.Mutex
	status  Status
	cluster *Cluster
	down    chan struct{}
	once    sync.Once
}

// RunDaemon starts a cluster and serves the control socket until ctx ends
// (SIGINT/SIGTERM in the CLI) or a client asks for /down; then it tears the
// cluster down and returns. A failed Up is reported on /status for a minute
// so the `up` command can show why.
func RunDaemon(ctx context.Context, opts Options) error {
	if err := opts.setDefaults(); err != nil {
		return err
	}
	if r, ok := liveRunFor(opts.StateDir); ok {
		return fmt.Errorf("state dir %s is in use by run %s (pid %d)", opts.StateDir, r.RunID, r.PID)
	}
	sock := SocketPath(opts.StateDir)
	_ = os.Remove(sock) // no live run owns it (checked above)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listen on control socket %s: %w", sock, err)
	}
	d := &daemon{status: Status{State: StateStarting, PID: os.Getpid()}, down: make(chan struct{})}
	srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = os.Remove(sock)
	}()

	opts.OnPhase = func(p Phase) {
		d.mu.Lock()
		d.status.Timings = append(d.status.Timings, p)
		d.mu.Unlock()
	}
	upCtx, cancelUp := context.WithCancel(ctx)
	go func() {
		select {
		case <-d.down:
			cancelUp()
		case <-upCtx.Done():
		}
	}()
	c, err := Up(upCtx, opts)
	cancelUp()
	if err != nil {
		d.mu.Lock()
		d.status.State, d.status.Error = StateFailed, err.Error()
		d.mu.Unlock()
		select {
		case <-d.down:
		case <-ctx.Done():
		case <-time.After(time.Minute):
		}
		return err
	}
	d.mu.Lock()
	d.cluster = c
	d.status.State, d.status.RunID, d.status.Kubeconfig, d.status.Kubectl = StateReady, c.RunID, c.Kubeconfig, c.KubectlPath()
	d.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-d.down:
	}
	d.mu.Lock()
	d.status.State = StateStopping
	d.mu.Unlock()
	return c.Down(context.Background())
}

func (d *daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		s := d.status
		c := d.cluster
		d.mu.Unlock()
		if c != nil {
			s.Components = c.Components()
			s.Faults = c.NetworkFaults()
		}
		writeJSON(w, s)
	})
	mux.HandleFunc("POST /down", func(w http.ResponseWriter, r *http.Request) {
		d.once.Do(func() { close(d.down) })
		writeJSON(w, OpResult{})
	})
	mux.HandleFunc("POST /op", func(w http.ResponseWriter, r *http.Request) {
		var op Op
		if err := json.NewDecoder(r.Body).Decode(&op); err != nil {
			writeJSON(w, OpResult{Error: "bad request: " + err.Error()})
			return
		}
		d.mu.Lock()
		c := d.cluster
		d.mu.Unlock()
		if c == nil {
			writeJSON(w, OpResult{Error: "the cluster is not ready yet (see `localkube status`)"})
			return
		}
		writeJSON(w, c.Do(r.Context(), op))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Client talks to a daemon's control socket.
type Client struct {
	hc *http.Client
}

// NewClient returns a client for the daemon of stateDir.
func NewClient(stateDir string) *Client {
	sock := SocketPath(stateDir)
	return &Client{hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}}
}

// Status asks the daemon for its status; an error means no daemon answers.
func (cl *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := cl.call(ctx, http.MethodGet, "/status", nil, &s)
	return s, err
}

// Down asks the daemon to tear the cluster down; it returns at once.
func (cl *Client) Down(ctx context.Context) error {
	var r OpResult
	return cl.call(ctx, http.MethodPost, "/down", struct{}{}, &r)
}

// Do runs an operation in the daemon.
func (cl *Client) Do(ctx context.Context, op Op) (OpResult, error) {
	var r OpResult
	err := cl.call(ctx, http.MethodPost, "/op", op, &r)
	if err == nil && r.Error != "" {
		err = errors.New(r.Error)
	}
	return r, err
}

func (cl *Client) call(ctx context.Context, method, path string, body, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localkube"+path, rd)
	if err != nil {
		return err
	}
	resp, err := cl.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}
