package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/redis-ha-agent/redis-ha-agent/agent/kubeapi"
)

// StatusCmd prints the StatefulSet's pods like `patronictl list`: what
// Kubernetes says (label, readiness, node, IP), what each agent reports
// (role, replication offsets, lag, cluster state) and the Lease.
type StatusCmd struct {
	Kubeconfig  string        `name:"kubeconfig" env:"KUBECONFIG" help:"kubeconfig file; empty uses the pod's service account."`
	Namespace   string        `name:"namespace" short:"n" env:"POD_NAMESPACE" default:"default" help:"Namespace of the StatefulSet."`
	StatefulSet string        `name:"statefulset" env:"REDIS_HA_STATEFULSET" required:"" help:"StatefulSet to report on."`
	LeaseName   string        `name:"lease-name" env:"REDIS_HA_LEASE_NAME" help:"Lease name; default: the StatefulSet name."`
	RoleLabel   string        `name:"role-label" env:"REDIS_HA_ROLE_LABEL" default:"redis-ha-agent/role" help:"Pod label key carrying the role."`
	AgentPort   int           `name:"agent-port" env:"REDIS_HA_AGENT_PORT" default:"8080" help:"Port of the agents' HTTP server."`
	Via         string        `name:"via" enum:"auto,proxy,direct" default:"auto" help:"How to reach each agent's /status: proxy (through the API server, works from a workstation), direct (pod IP, from inside the cluster), auto (direct inside a pod, else proxy)."`
	Output      string        `name:"output" short:"o" enum:"table,json" default:"table" help:"Output format: table or json."`
	Timeout     time.Duration `name:"timeout" default:"5s" help:"Per-pod timeout for /status."`
}

// PodReport is one row: Kubernetes' view plus the agent's own /status.
type PodReport struct {
	Pod         string         `json:"pod"`
	Node        string         `json:"node"`
	IP          string         `json:"ip"`
	Phase       string         `json:"phase"`
	Ready       bool           `json:"ready"`
	RoleLabel   string         `json:"roleLabel"`
	LeaseHolder bool           `json:"leaseHolder"`
	Agent       map[string]any `json:"agent,omitempty"`
	AgentError  string         `json:"agentError,omitempty"`
}

// Report is the whole output of status -o json.
type Report struct {
	Namespace   string      `json:"namespace"`
	StatefulSet string      `json:"statefulSet"`
	Lease       *LeaseInfo  `json:"lease,omitempty"`
	Pods        []PodReport `json:"pods"`
}

// LeaseInfo is the Lease record as stored (remote clocks: informational).
type LeaseInfo struct {
	Holder      string    `json:"holder"`
	RenewTime   time.Time `json:"renewTime,omitempty"`
	Transitions int32     `json:"transitions"`
}

func (c *StatusCmd) Run(g *Globals) error {
	rc, err := kubeapi.RESTConfig(c.Kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubeapi.New(rc)
	if err != nil {
		return err
	}
	rep, err := c.collect(g.Ctx, client)
	if err != nil {
		return err
	}
	if c.Output == "json" {
		enc := json.NewEncoder(g.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeTable(g.Stdout, rep)
}

func (c *StatusCmd) collect(ctx context.Context, client kubeapi.Clients) (*Report, error) {
	sts, err := client.AppsV1().StatefulSets(c.Namespace).Get(ctx, c.StatefulSet, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get StatefulSet %s/%s: %w", c.Namespace, c.StatefulSet, err)
	}
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("StatefulSet %s/%s selector: %w", c.Namespace, c.StatefulSet, err)
	}
	pods, err := client.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list pods of StatefulSet %s/%s: %w", c.Namespace, c.StatefulSet, err)
	}
	rep := &Report{Namespace: c.Namespace, StatefulSet: c.StatefulSet}
	leaseName := c.LeaseName
	if leaseName == "" {
		leaseName = c.StatefulSet
	}
	if l, err := client.CoordinationV1().Leases(c.Namespace).Get(ctx, leaseName, metav1.GetOptions{}); err == nil {
		li := &LeaseInfo{}
		if l.Spec.HolderIdentity != nil {
			li.Holder = *l.Spec.HolderIdentity
		}
		if l.Spec.RenewTime != nil {
			li.RenewTime = l.Spec.RenewTime.Time
		}
		if l.Spec.LeaseTransitions != nil {
			li.Transitions = *l.Spec.LeaseTransitions
		}
		rep.Lease = li
	}
	direct := c.Via == "direct" || (c.Via == "auto" && c.Kubeconfig == "")
	for _, p := range pods.Items {
		r := PodReport{Pod: p.Name, Node: p.Spec.NodeName, IP: p.Status.PodIP, Phase: string(p.Status.Phase), RoleLabel: p.Labels[c.RoleLabel]}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady {
				r.Ready = cond.Status == corev1.ConditionTrue
			}
		}
		r.LeaseHolder = rep.Lease != nil && rep.Lease.Holder == p.Name
		r.Agent, err = c.agentStatus(ctx, client, &p, direct)
		if err != nil {
			r.AgentError = err.Error()
		}
		rep.Pods = append(rep.Pods, r)
	}
	sort.Slice(rep.Pods, func(i, j int) bool { return ordinalOf(rep.Pods[i].Pod) < ordinalOf(rep.Pods[j].Pod) })
	return rep, nil
}

func (c *StatusCmd) agentStatus(ctx context.Context, client kubeapi.Clients, p *corev1.Pod, direct bool) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var body []byte
	var err error
	if direct {
		if p.Status.PodIP == "" {
			return nil, fmt.Errorf("no pod IP yet")
		}
		body, err = httpGet(ctx, "http://"+net.JoinHostPort(p.Status.PodIP, strconv.Itoa(c.AgentPort))+"/status")
	} else {
		body, err = client.CoreV1().Pods(p.Namespace).ProxyGet("http", p.Name, strconv.Itoa(c.AgentPort), "/status", nil).DoRaw(ctx)
	}
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("agent /status is not JSON: %w", err)
	}
	return m, nil
}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}

func ordinalOf(pod string) int {
	i := strings.LastIndexByte(pod, '-')
	n, err := strconv.Atoi(pod[i+1:])
	if err != nil {
		return 1 << 30
	}
	return n
}

// field returns the first of keys present in the agent's status, as text.
func field(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if v, ok := m[k]; ok && v != nil {
			switch t := v.(type) {
			case float64:
				return strconv.FormatFloat(t, 'f', -1, 64)
			case string:
				return t
			default:
				b, _ := json.Marshal(t)
				return string(b)
			}
		}
	}
	return "-"
}

// engineCell is "valkey 8.1.1" from an agent's engine and engine_version;
// "-" from an agent that has not read its redis-server yet, or predates them.
func engineCell(agent map[string]any) string {
	name, version := field(agent, "engine"), field(agent, "engine_version")
	if name == "-" || name == "" {
		return "-"
	}
	return name + " " + version
}

func writeTable(w io.Writer, rep *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	lease := "none"
	if rep.Lease != nil {
		lease = fmt.Sprintf("%s (transitions %d)", rep.Lease.Holder, rep.Lease.Transitions)
	}
	fmt.Fprintf(tw, "StatefulSet %s/%s   Lease holder: %s\n", rep.Namespace, rep.StatefulSet, lease)
	fmt.Fprintln(tw, "POD\tNODE\tIP\tREADY\tLABEL\tROLE\tENGINE\tREPLID\tOFFSET\tLAG\tDETAIL")
	for _, p := range rep.Pods {
		role, engine, replid, offset, lag, detail := "-", "-", "-", "-", "-", p.AgentError
		if p.Agent != nil {
			role = field(p.Agent, "role")
			engine = engineCell(p.Agent)
			replid = field(p.Agent, "replid", "replID")
			if len(replid) > 8 {
				replid = replid[:8]
			}
			offset = field(p.Agent, "offset")
			lag = field(p.Agent, "lag", "lag_bytes")
			detail = field(p.Agent, "lastDecision", "decision", "reason")
			if st := field(p.Agent, "clusterState"); st != "-" {
				detail = "cluster_state:" + st
				if slots := field(p.Agent, "slots"); slots != "-" {
					detail += " slots " + slots
				}
			}
		}
		if p.LeaseHolder {
			role += "*"
		}
		label := p.RoleLabel
		if label == "" {
			label = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Pod, p.Node, p.IP, p.Ready, label, role, engine, replid, offset, lag, detail)
	}
	fmt.Fprintln(tw, "(* = Lease holder)")
	return tw.Flush()
}
