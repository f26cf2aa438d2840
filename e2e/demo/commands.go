package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kubectl runs kubectl with the cluster's kubeconfig, as a user would.
func (e Env) Kubectl(ctx context.Context, args ...string) (string, error) {
	var out, errb bytes.Buffer
	bin := e.KubectlBin
	if bin == "" {
		bin = "kubectl"
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Deploy creates the namespace (if needed) and applies a kustomize
// directory of manifests/ into it, unchanged.
func (e Env) Deploy(ctx context.Context, ns, kustomizeDir string) error {
	_, err := e.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	_, err = e.Kubectl(ctx, "apply", "--server-side", "-n", ns, "-k", kustomizeDir)
	return err
}

// StatusTable runs `redis-ha-agent status` (the table) against the cluster
// from outside it, through the API server's pod proxy.
func (e Env) StatusTable(ctx context.Context, ns, sts string) (string, error) {
	return e.agentStatus(ctx, ns, sts, "table")
}

// StatusReport is the part of `redis-ha-agent status -o json` the checks read.
type StatusReport struct {
	Namespace   string `json:"namespace"`
	StatefulSet string `json:"statefulSet"`
	Lease       *struct {
		Holder      string `json:"holder"`
		Transitions int32  `json:"transitions"`
	} `json:"lease"`
	Pods []struct {
		Pod         string         `json:"pod"`
		IP          string         `json:"ip"`
		Ready       bool           `json:"ready"`
		RoleLabel   string         `json:"roleLabel"`
		LeaseHolder bool           `json:"leaseHolder"`
		Agent       map[string]any `json:"agent"`
		AgentError  string         `json:"agentError"`
	} `json:"pods"`
}

// StatusJSON runs `redis-ha-agent status -o json` and decodes it.
func (e Env) StatusJSON(ctx context.Context, ns, sts string) (StatusReport, string, error) {
	var r StatusReport
	out, err := e.agentStatus(ctx, ns, sts, "json")
	if err != nil {
		return r, out, err
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return r, out, fmt.Errorf("redis-ha-agent status -o json printed no JSON: %w", err)
	}
	return r, out, nil
}

func (e Env) agentStatus(ctx context.Context, ns, sts, format string) (string, error) {
	args := []string{"status", "--kubeconfig", e.Kubeconfig, "--namespace", ns, "--statefulset", sts, "-o", format}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, e.AgentBinary, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", e.AgentBinary, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// AgentEvent is one Kubernetes Event the agents recorded.
type AgentEvent struct {
	Object string
	Type   string
	Reason string
	Note   string
	Time   metav1.MicroTime
}

// AgentEvents lists the events.k8s.io/v1 Events the agents reported in ns
// (reportingController redis-ha-agent), oldest first.
func (e Env) AgentEvents(ctx context.Context, ns string) ([]AgentEvent, error) {
	l, err := e.Kube.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list events in %s: %w", ns, err)
	}
	var out []AgentEvent
	for _, ev := range l.Items {
		if ev.ReportingController != "redis-ha-agent" {
			continue
		}
		// A repeated event keeps its first EventTime; the series says when
		// it was last seen.
		t := ev.EventTime
		if ev.Series != nil && t.Before(&ev.Series.LastObservedTime) {
			t = ev.Series.LastObservedTime
		}
		out = append(out, AgentEvent{Object: ev.Regarding.Name, Type: ev.Type, Reason: ev.Reason, Note: ev.Note, Time: t})
	}
	sortEvents(out)
	return out, nil
}
