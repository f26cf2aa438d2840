package kubelet

import (
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

type mapSource struct {
	cms     map[string]*v1.ConfigMap
	secrets map[string]*v1.Secret
}

var _ objectSource = mapSource{}

func (m mapSource) ConfigMap(_, name string) (*v1.ConfigMap, error) {
	if c, ok := m.cms[name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (m mapSource) Secret(_, name string) (*v1.Secret, error) {
	if s, ok := m.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func TestBuildEnv(t *testing.T) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "redis-0", Namespace: "ns", UID: "u1", Labels: map[string]string{"app": "redis"}},
		Spec:       v1.PodSpec{NodeName: "node-a", ServiceAccountName: "sa"},
	}
	src := mapSource{
		cms:     map[string]*v1.ConfigMap{"cfg": {Data: map[string]string{"MODE": "sentinel", "B": "2"}}},
		secrets: map[string]*v1.Secret{"auth": {Data: map[string][]byte{"password": []byte("s3cret")}}},
	}
	c := &v1.Container{
		Name:      "redis",
		Resources: v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("256Mi")}},
		EnvFrom: []v1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}},
			{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "missing"}, Optional: ptr.To(true)}}},
		Env: []v1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "POD_IP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "APP", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "NODE", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "ADDR", Value: "$(POD_NAME).$(POD_IP):$(LATER) $$(POD_IP)"},
			{Name: "PASS", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "auth"}, Key: "password"}}},
			{Name: "OPT", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "nope", Optional: ptr.To(true)}}},
			{Name: "MEM", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "LATER", Value: "x"},
		},
	}
	pod.Spec.Containers = []v1.Container{*c}
	env, err := buildEnv(c, envContext{pod: pod, podIP: "10.244.0.5", hostIP: "10.244.0.1", objects: src, serviceHost: "10.96.0.1", servicePort: "443", hostPATH: "/usr/bin:/bin"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range env {
		got[e.Name] = e.Value
	}
	want := map[string]string{
		"PATH": "/usr/bin:/bin", "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
		"CFG_MODE": "sentinel", "CFG_B": "2", "POD_NAME": "redis-0", "POD_IP": "10.244.0.5", "APP": "redis", "NODE": "node-a",
		"ADDR": "redis-0.10.244.0.5:$(LATER) $(POD_IP)", "PASS": "s3cret", "MEM": "256", "LATER": "x",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["OPT"]; ok {
		t.Errorf("optional missing key set")
	}
	c.Env = append(c.Env, v1.EnvVar{Name: "X", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "auth"}, Key: "user"}}})
	if _, err := buildEnv(c, envContext{pod: pod, objects: src}); err == nil || !strings.Contains(err.Error(), `key "user" not found in secret ns/auth`) {
		t.Errorf("missing key error = %v", err)
	}
	if got := formatMap(map[string]string{"b": "2", "a": `q"`}); !reflect.DeepEqual(got, "a=\"q\\\"\"\nb=\"2\"") {
		t.Errorf("formatMap = %q", got)
	}
}
