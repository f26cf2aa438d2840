package kubelet

import (
	"fmt"
	"math"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// objectSource reads the ConfigMaps and Secrets that env vars and volumes
// refer to (an informer cache in the kubelet, a map in tests). A missing
// object is reported with an error for which apierrors.IsNotFound is true.
type objectSource interface {
	ConfigMap(ns, name string) (*v1.ConfigMap, error)
	Secret(ns, name string) (*v1.Secret, error)
}

// envVar is one NAME=value of a container's environment, in order.
type envVar struct{ Name, Value string }

// envContext is what env resolution needs besides the container spec.
type envContext struct {
	pod         *v1.Pod
	podIP       string
	hostIP      string
	objects     objectSource
	serviceHost string // the kubernetes Service's ClusterIP
	servicePort string
	hostPATH    string
	nodeAlloc   v1.ResourceList // used for resourceFieldRef limits that are unset
}

// buildEnv resolves the container's environment the way the kubelet does:
// the kubernetes Service variables, then envFrom in order, then env in order
// where each value may reference earlier names with $(NAME). PATH defaults to
// the host PATH because every binary comes from the host.
func buildEnv(c *v1.Container, ec envContext) ([]envVar, error) {
	var out []envVar
	idx := map[string]int{}
	set := func(name, value string) {
		if i, ok := idx[name]; ok {
			out[i].Value = value
			return
		}
		idx[name] = len(out)
		out = append(out, envVar{name, value})
	}
	lookup := func(name string) (string, bool) {
		if i, ok := idx[name]; ok {
			return out[i].Value, true
		}
		return "", false
	}
	set("PATH", ec.hostPATH)
	set("HOSTNAME", podHostname(ec.pod))
	if ec.serviceHost != "" {
		set("KUBERNETES_SERVICE_HOST", ec.serviceHost)
		set("KUBERNETES_SERVICE_PORT", ec.servicePort)
		set("KUBERNETES_SERVICE_PORT_HTTPS", ec.servicePort)
		addr := "tcp://" + ec.serviceHost + ":" + ec.servicePort
		set("KUBERNETES_PORT", addr)
		set("KUBERNETES_PORT_"+ec.servicePort+"_TCP", addr)
		set("KUBERNETES_PORT_"+ec.servicePort+"_TCP_PROTO", "tcp")
		set("KUBERNETES_PORT_"+ec.servicePort+"_TCP_PORT", ec.servicePort)
		set("KUBERNETES_PORT_"+ec.servicePort+"_TCP_ADDR", ec.serviceHost)
	}
	ns := ec.pod.Namespace
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := ec.objects.ConfigMap(ns, from.ConfigMapRef.Name)
			if err != nil {
				if isOptional(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("container %q envFrom configMap %q: %w", c.Name, from.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := ec.objects.Secret(ns, from.SecretRef.Name)
			if err != nil {
				if isOptional(from.SecretRef.Optional) {
					continue
				}
				return nil, fmt.Errorf("container %q envFrom secret %q: %w", c.Name, from.SecretRef.Name, err)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(from.Prefix+k, data[k])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, lookup))
			continue
		}
		v, ok, err := envValueFrom(c, e, ec)
		if err != nil {
			return nil, err
		}
		if ok {
			set(e.Name, v)
		}
	}
	return out, nil
}

// envValueFrom resolves one valueFrom; ok is false for a missing optional key.
func envValueFrom(c *v1.Container, e v1.EnvVar, ec envContext) (string, bool, error) {
	ns := ec.pod.Namespace
	vf := e.ValueFrom
	switch {
	case vf.FieldRef != nil:
		v, err := podFieldValue(ec.pod, vf.FieldRef.FieldPath, ec.podIP, ec.hostIP)
		if err != nil {
			return "", false, fmt.Errorf("container %q env %s: %w", c.Name, e.Name, err)
		}
		return v, true, nil
	case vf.ResourceFieldRef != nil:
		v, err := resourceFieldValue(ec.pod, c.Name, vf.ResourceFieldRef, ec.nodeAlloc)
		if err != nil {
			return "", false, fmt.Errorf("container %q env %s: %w", c.Name, e.Name, err)
		}
		return v, true, nil
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		cm, err := ec.objects.ConfigMap(ns, ref.Name)
		if err != nil {
			if isOptional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("container %q env %s: configMap %q: %w", c.Name, e.Name, ref.Name, err)
		}
		if v, ok := cm.Data[ref.Key]; ok {
			return v, true, nil
		}
		if v, ok := cm.BinaryData[ref.Key]; ok {
			return string(v), true, nil
		}
		if isOptional(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("container %q env %s: key %q not found in configMap %s/%s", c.Name, e.Name, ref.Key, ns, ref.Name)
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		s, err := ec.objects.Secret(ns, ref.Name)
		if err != nil {
			if isOptional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("container %q env %s: secret %q: %w", c.Name, e.Name, ref.Name, err)
		}
		if v, ok := s.Data[ref.Key]; ok {
			return string(v), true, nil
		}
		if isOptional(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("container %q env %s: key %q not found in secret %s/%s", c.Name, e.Name, ref.Key, ns, ref.Name)
	}
	return "", false, fmt.Errorf("container %q env %s: valueFrom has no source this node agent supports", c.Name, e.Name)
}

func isOptional(b *bool) bool { return b != nil && *b }

// podFieldValue implements the downward API fieldPaths for env and volumes.
func podFieldValue(pod *v1.Pod, fieldPath, podIP, hostIP string) (string, error) {
	if key, ok := subscript(fieldPath, "metadata.labels"); ok {
		return pod.Labels[key], nil
	}
	if key, ok := subscript(fieldPath, "metadata.annotations"); ok {
		return pod.Annotations[key], nil
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	}
	return "", fmt.Errorf("fieldPath %q is not supported by this node agent (supported: metadata.name, metadata.namespace, "+
		"metadata.uid, metadata.labels['k'], metadata.annotations['k'], spec.nodeName, spec.serviceAccountName, "+
		"status.podIP(s), status.hostIP(s))", fieldPath)
}

// subscript parses `prefix['key']`.
func subscript(fieldPath, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(fieldPath, prefix+"[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return "", false
	}
	rest = strings.TrimSuffix(rest, "]")
	if len(rest) >= 2 && (rest[0] == '\'' || rest[0] == '"') && rest[len(rest)-1] == rest[0] {
		return rest[1 : len(rest)-1], true
	}
	return "", false
}

// formatMap renders labels/annotations like the downward API: k="v" lines,
// sorted by key, values quoted with Go escaping.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// resourceFieldValue implements resourceFieldRef: the container's request or
// limit divided by the divisor, rounded up; an unset limit is the node's
// allocatable, as on a real node.
func resourceFieldValue(pod *v1.Pod, defaultContainer string, ref *v1.ResourceFieldSelector, nodeAlloc v1.ResourceList) (string, error) {
	name := ref.ContainerName
	if name == "" {
		name = defaultContainer
	}
	var c *v1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			c = &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			c = &pod.Spec.InitContainers[i]
		}
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef container %q not found in the pod", name)
	}
	kind, res, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("resourceFieldRef resource %q: want limits.<name> or requests.<name>", ref.Resource)
	}
	var q resource.Quantity
	var found bool
	switch kind {
	case "limits":
		q, found = c.Resources.Limits[v1.ResourceName(res)]
		if !found {
			q, found = nodeAlloc[v1.ResourceName(res)]
		}
	case "requests":
		q, found = c.Resources.Requests[v1.ResourceName(res)]
	default:
		return "", fmt.Errorf("resourceFieldRef resource %q: want limits.<name> or requests.<name>", ref.Resource)
	}
	if !found {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if res == "cpu" {
		return fmt.Sprint(int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue())))), nil
	}
	return fmt.Sprint(int64(math.Ceil(float64(q.Value()) / float64(divisor.Value())))), nil
}

// envList renders the environment for os/exec.
func envList(vars []envVar) []string {
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = v.Name + "=" + v.Value
	}
	return out
}

// envLookup returns a $(VAR) lookup over vars.
func envLookup(vars []envVar) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for i := len(vars) - 1; i >= 0; i-- {
			if vars[i].Name == name {
				return vars[i].Value, true
			}
		}
		return "", false
	}
}

// podHostname is the pod's hostname: spec.hostname or the pod name, cut to
// 63 characters like the real kubelet.
func podHostname(pod *v1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}
