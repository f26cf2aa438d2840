package faults

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// procUsage is one process's resident memory and CPU time so far. RSS
// splits into anonymous memory (heap, stacks: the process's own) and file
// pages (the executable's mapped pages, shared by every agent on the node
// and reclaimable).
type procUsage struct {
	rssKB, anonKB, fileKB int64
	cpuS                  float64 // user + system
}

func readUsage(pid int) (procUsage, error) {
	var u procUsage
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	sc := bufio.NewScanner(bytes.NewReader(st))
	for sc.Scan() {
		kb := func(prefix string, into *int64) {
			if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				*into, _ = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			}
		}
		kb("VmRSS:", &u.rssKB)
		kb("RssAnon:", &u.anonKB)
		kb("RssFile:", &u.fileKB)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields, in clock ticks (USER_HZ, 100 on Linux).
	rest := stat[bytes.LastIndexByte(stat, ')')+2:]
	f := strings.Fields(string(rest))
	ut, _ := strconv.ParseFloat(f[11], 64)
	stt, _ := strconv.ParseFloat(f[12], 64)
	u.cpuS = (ut + stt) / 100
	return u, nil
}

// flowSchemaName is the API Priority and Fairness FlowSchema that makes the
// API server count the agent's requests by itself: every request of the
// agent's ServiceAccount is classified into it, and
// apiserver_flowcontrol_dispatched_requests_total{flow_schema=...} is the
// API server's own count. No audit log and no client-side counting needed.
func flowSchemaName(d *deployment) string { return "faults-agent-" + d.ns }

func createAgentFlowSchema(ctx context.Context, d *deployment, serviceAccount string) error {
	fs := &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: flowSchemaName(d)},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "workload-low"},
			MatchingPrecedence:         100,
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindServiceAccount,
					ServiceAccount: &flowcontrolv1.ServiceAccountSubject{Namespace: d.ns, Name: serviceAccount}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"},
					ClusterScope: true, Namespaces: []string{"*"}}},
				NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
			}},
		},
	}
	_, err := cluster.Clientset.FlowcontrolV1().FlowSchemas().Create(ctx, fs, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create FlowSchema %s: %w", fs.Name, err)
	}
	return nil
}

func deleteFlowSchema(d *deployment) {
	_ = cluster.Clientset.FlowcontrolV1().FlowSchemas().Delete(context.Background(), flowSchemaName(d), metav1.DeleteOptions{})
}

// dispatchedRequests reads the API server's /metrics and sums the requests
// it dispatched for the FlowSchema.
func dispatchedRequests(ctx context.Context, flowSchema string) (float64, error) {
	raw, err := cluster.Clientset.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("scrape kube-apiserver /metrics: %w", err)
	}
	var sum float64
	found := false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "apiserver_flowcontrol_dispatched_requests_total{") || !strings.Contains(l, `flow_schema="`+flowSchema+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	if !found {
		return 0, nil // no request dispatched yet for this schema
	}
	return sum, nil
}

func binarySize(pid int) (int64, error) {
	fi, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
