package kubelet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// handlerTarget is where a probe or hook acts: the pod's address and network
// namespace, and the container's exec.
type handlerTarget struct {
	podIP string
	ports []v1.ContainerPort
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	exec  func(ctx context.Context, cmd []string) error
}

// resolvePort turns a port number or a named container port into a number.
func resolvePort(p intstr.IntOrString, ports []v1.ContainerPort) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("port %d out of range", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	for _, cp := range ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("named port %q is not declared in the container's ports", p.StrVal)
}

// httpGet performs a probe/hook httpGet: success is a status in [200,400).
func httpGet(ctx context.Context, h *v1.HTTPGetAction, t handlerTarget) error {
	port, err := resolvePort(h.Port, t.ports)
	if err != nil {
		return err
	}
	host := h.Host
	if host == "" {
		host = t.podIP
	}
	scheme := "http"
	if h.Scheme == v1.URISchemeHTTPS {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: h.Path}
	if u.Path == "" {
		u.Path = "/"
	}
	if p, q, ok := cutQuery(h.Path); ok {
		u.Path, u.RawQuery = p, q
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-probe/1.34")
	for _, hd := range h.HTTPHeaders {
		if hd.Name == "Host" {
			req.Host = hd.Value
			continue
		}
		req.Header.Add(hd.Name, hd.Value)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext:       t.dial,
		DisableKeepAlives: true,
		// Probes skip verification, as the real kubelet does.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probe semantics
	}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d: %s", resp.StatusCode, body)
	}
	return nil
}

func cutQuery(p string) (string, string, bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			return p[:i], p[i+1:], true
		}
	}
	return p, "", false
}

func tcpSocket(ctx context.Context, s *v1.TCPSocketAction, t handlerTarget) error {
	port, err := resolvePort(s.Port, t.ports)
	if err != nil {
		return err
	}
	host := s.Host
	if host == "" {
		host = t.podIP
	}
	conn, err := t.dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return conn.Close()
}

// runProbe runs one probe attempt with its timeout.
func runProbe(ctx context.Context, p *v1.Probe, t handlerTarget) error {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case p.HTTPGet != nil:
		return httpGet(ctx, p.HTTPGet, t)
	case p.TCPSocket != nil:
		return tcpSocket(ctx, p.TCPSocket, t)
	case p.Exec != nil:
		return t.exec(ctx, p.Exec.Command)
	}
	return errors.New("probe has no supported handler")
}

// probeKind names the three probes.
type probeKind string

const (
	probeStartup   probeKind = "Startup"
	probeLiveness  probeKind = "Liveness"
	probeReadiness probeKind = "Readiness"
)

// probeSettings are a probe's timing with the API defaults applied.
type probeSettings struct {
	initialDelay, period time.Duration
	success, failure     int
}

func settings(p *v1.Probe) probeSettings {
	s := probeSettings{
		initialDelay: time.Duration(p.InitialDelaySeconds) * time.Second,
		period:       time.Duration(p.PeriodSeconds) * time.Second,
		success:      int(p.SuccessThreshold),
		failure:      int(p.FailureThreshold),
	}
	if s.period <= 0 {
		s.period = 10 * time.Second
	}
	if s.success <= 0 {
		s.success = 1
	}
	if s.failure <= 0 {
		s.failure = 3
	}
	return s
}

// probeCounter applies success/failure thresholds to attempt results and
// reports the result when it changes (or, for failures, each time the
// threshold is reached again).
type probeCounter struct {
	s             probeSettings
	succ, fail    int
	result, known bool
}

// observe records one attempt; report is set when the caller must act.
func (c *probeCounter) observe(ok bool) (result, report bool) {
	if ok {
		c.fail = 0
		c.succ++
		if c.succ >= c.s.success && (!c.known || !c.result) {
			c.result, c.known = true, true
			return true, true
		}
		return c.result, false
	}
	c.succ = 0
	c.fail++
	if c.fail >= c.s.failure && (!c.known || c.result) {
		c.result, c.known = false, true
		return false, true
	}
	return c.result, false
}
