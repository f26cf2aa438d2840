package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cachedToken is a service-account token of a projected volume.
type cachedToken struct {
	token   string
	renewAt time.Time
}

// volumeEnv is what the volume payloads need from the kubelet.
type volumeEnv struct {
	pod       *v1.Pod
	podIP     string
	hostIP    string
	objects   objectSource
	caPEM     []byte
	nodeAlloc v1.ResourceList
	token     func(src *v1.ServiceAccountTokenProjection, key string) (string, error)
}

// keyPayload maps ConfigMap/Secret data to files (all keys, or items).
func keyPayload(what string, data map[string][]byte, items []v1.KeyToPath, defMode *int32, optional bool) (map[string]volumeFile, error) {
	mode := os.FileMode(0o644)
	if defMode != nil {
		mode = os.FileMode(*defMode)
	}
	out := map[string]volumeFile{}
	if len(items) == 0 {
		for k, v := range data {
			if err := checkVolumePath(k); err != nil {
				return nil, fmt.Errorf("%s key %q: %w", what, k, err)
			}
			out[k] = volumeFile{v, mode}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s has no key %q (listed in the volume's items): add it or mark the volume optional", what, it.Key)
		}
		if err := checkVolumePath(it.Path); err != nil {
			return nil, fmt.Errorf("%s item %q: %w", what, it.Key, err)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		out[it.Path] = volumeFile{v, m}
	}
	return out, nil
}

func configMapData(cm *v1.ConfigMap) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		out[k] = v
	}
	return out
}

func (ve volumeEnv) configMap(name string, items []v1.KeyToPath, mode *int32, optional *bool) (map[string]volumeFile, error) {
	what := fmt.Sprintf("configMap %s/%s", ve.pod.Namespace, name)
	cm, err := ve.objects.ConfigMap(ve.pod.Namespace, name)
	switch {
	case apierrors.IsNotFound(err) && name == "kube-root-ca.crt" && len(ve.caPEM) > 0:
		// The controller manager publishes it shortly after a namespace
		// appears; the cluster CA we were given is the same content.
		cm = &v1.ConfigMap{Data: map[string]string{"ca.crt": string(ve.caPEM)}}
	case apierrors.IsNotFound(err) && isOptional(optional):
		return map[string]volumeFile{}, nil
	case err != nil:
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return keyPayload(what, configMapData(cm), items, mode, isOptional(optional))
}

func (ve volumeEnv) secret(name string, items []v1.KeyToPath, mode *int32, optional *bool) (map[string]volumeFile, error) {
	what := fmt.Sprintf("secret %s/%s", ve.pod.Namespace, name)
	s, err := ve.objects.Secret(ve.pod.Namespace, name)
	switch {
	case apierrors.IsNotFound(err) && isOptional(optional):
		return map[string]volumeFile{}, nil
	case err != nil:
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return keyPayload(what, s.Data, items, mode, isOptional(optional))
}

func (ve volumeEnv) downward(items []v1.DownwardAPIVolumeFile, defMode *int32) (map[string]volumeFile, error) {
	mode := os.FileMode(0o644)
	if defMode != nil {
		mode = os.FileMode(*defMode)
	}
	out := map[string]volumeFile{}
	for _, it := range items {
		if err := checkVolumePath(it.Path); err != nil {
			return nil, fmt.Errorf("downwardAPI item: %w", err)
		}
		var val string
		var err error
		switch {
		case it.FieldRef != nil:
			val, err = podFieldValue(ve.pod, it.FieldRef.FieldPath, ve.podIP, ve.hostIP)
		case it.ResourceFieldRef != nil:
			val, err = resourceFieldValue(ve.pod, it.ResourceFieldRef.ContainerName, it.ResourceFieldRef, ve.nodeAlloc)
		default:
			err = errors.New("item has neither fieldRef nor resourceFieldRef")
		}
		if err != nil {
			return nil, fmt.Errorf("downwardAPI item %q: %w", it.Path, err)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		out[it.Path] = volumeFile{[]byte(val), m}
	}
	return out, nil
}

func (ve volumeEnv) projected(volName string, p *v1.ProjectedVolumeSource) (map[string]volumeFile, error) {
	out := map[string]volumeFile{}
	merge := func(files map[string]volumeFile, err error) error {
		if err != nil {
			return err
		}
		for k, v := range files {
			out[k] = v
		}
		return nil
	}
	mode := p.DefaultMode
	for i, src := range p.Sources {
		var err error
		switch {
		case src.ConfigMap != nil:
			err = merge(ve.configMap(src.ConfigMap.Name, src.ConfigMap.Items, mode, src.ConfigMap.Optional))
		case src.Secret != nil:
			err = merge(ve.secret(src.Secret.Name, src.Secret.Items, mode, src.Secret.Optional))
		case src.DownwardAPI != nil:
			err = merge(ve.downward(src.DownwardAPI.Items, mode))
		case src.ServiceAccountToken != nil:
			var tok string
			tok, err = ve.token(src.ServiceAccountToken, fmt.Sprintf("%s/%d", volName, i))
			if err == nil {
				m := os.FileMode(0o644)
				if mode != nil {
					m = os.FileMode(*mode)
				}
				out[src.ServiceAccountToken.Path] = volumeFile{[]byte(tok), m}
			}
		default:
			err = errors.New("projected source of an unsupported type")
		}
		if err != nil {
			return nil, fmt.Errorf("projected volume %q source %d: %w", volName, i, err)
		}
	}
	return out, nil
}

// volumeDir is where volume name lives on the host.
func (w *podWorker) volumeDir(v *v1.Volume) string {
	if v.PersistentVolumeClaim != nil {
		return filepath.Join(w.k.cfg.RootDir, "pvc", w.ns, v.PersistentVolumeClaim.ClaimName)
	}
	return filepath.Join(w.dir, "volumes", v.Name)
}

// syncVolumes creates every volume and refreshes the content of the
// API-backed ones (so ConfigMap/Secret updates and token renewals reach
// running containers, as on a real node). first is true on the first call,
// when emptyDir and PVC ownership is set.
func (w *podWorker) syncVolumes(ctx context.Context, pod *v1.Pod, first bool) error {
	gid := int64(-1)
	if sc := pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		gid = *sc.FSGroup
	}
	ve := volumeEnv{
		pod: pod, podIP: w.net.IP, hostIP: w.k.cfg.HostIP, objects: w.k.objects,
		caPEM: w.k.cfg.CACertPEM, nodeAlloc: nodeAllocatable(),
		token: func(src *v1.ServiceAccountTokenProjection, key string) (string, error) {
			return w.token(ctx, pod, src, key)
		},
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		dir := w.volumeDir(v)
		var files map[string]volumeFile
		var err error
		switch vs := &v.VolumeSource; {
		case vs.EmptyDir != nil:
			if first {
				if err := makeSharedDir(dir, gid, false); err != nil {
					return fmt.Errorf("volume %q: %w", v.Name, err)
				}
			}
			continue
		case vs.PersistentVolumeClaim != nil:
			if first {
				if _, gerr := w.k.cfg.Client.CoreV1().PersistentVolumeClaims(w.ns).Get(ctx, vs.PersistentVolumeClaim.ClaimName, metav1.GetOptions{}); gerr != nil {
					return fmt.Errorf("volume %q: persistentVolumeClaim %s/%s: %w", v.Name, w.ns, vs.PersistentVolumeClaim.ClaimName, gerr)
				}
				err = makeSharedDir(dir, gid, true)
			}
			if err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
			continue
		case vs.ConfigMap != nil:
			files, err = ve.configMap(vs.ConfigMap.Name, vs.ConfigMap.Items, vs.ConfigMap.DefaultMode, vs.ConfigMap.Optional)
		case vs.Secret != nil:
			files, err = ve.secret(vs.Secret.SecretName, vs.Secret.Items, vs.Secret.DefaultMode, vs.Secret.Optional)
		case vs.DownwardAPI != nil:
			files, err = ve.downward(vs.DownwardAPI.Items, vs.DownwardAPI.DefaultMode)
		case vs.Projected != nil:
			files, err = ve.projected(v.Name, vs.Projected)
		default:
			return fmt.Errorf("volume %q: type not supported", v.Name)
		}
		if err != nil {
			return fmt.Errorf("volume %q: %w", v.Name, err)
		}
		changed, err := writeAtomicDir(dir, files, gid)
		if err != nil {
			return fmt.Errorf("volume %q: write %s: %w", v.Name, dir, err)
		}
		if changed && !first {
			w.log.Info().Str("volume", v.Name).Msg("volume content updated")
		}
	}
	return nil
}

// makeSharedDir creates a writable volume directory. Like emptyDir on a real
// node and local-path PVs it is world-writable, so any runAsUser can use it;
// with an fsGroup it gets the group and the setgid bit, and (recursive) for
// a PVC the existing files become group-writable, like fsGroupChangePolicy
// Always.
func makeSharedDir(dir string, gid int64, recursive bool) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	if gid < 0 {
		return nil
	}
	if !recursive {
		if err := os.Chown(dir, 0, int(gid)); err != nil {
			return err
		}
		return os.Chmod(dir, 0o777|os.ModeSetgid)
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil || info.Mode()&os.ModeSymlink != 0 {
			return err
		}
		if err := os.Lchown(p, -1, int(gid)); err != nil {
			return err
		}
		mode := info.Mode().Perm() | 0o060
		if info.Mode().Perm()&0o100 != 0 {
			mode |= 0o010
		}
		if d.IsDir() {
			return os.Chmod(p, mode|0o010|os.ModeSetgid)
		}
		return os.Chmod(p, mode)
	})
}

// token returns a bound service-account token for a projected volume,
// renewed after 80% of its lifetime like the real kubelet.
func (w *podWorker) token(ctx context.Context, pod *v1.Pod, src *v1.ServiceAccountTokenProjection, key string) (string, error) {
	if t, ok := w.tokens[key]; ok && time.Now().Before(t.renewAt) {
		return t.token, nil
	}
	exp := int64(3600)
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	var aud []string
	if src.Audience != "" {
		aud = []string{src.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr, err := w.k.cfg.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{
			Audiences:         aud,
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token request for serviceAccount %s/%s: %w", pod.Namespace, sa, err)
	}
	life := time.Until(tr.Status.ExpirationTimestamp.Time)
	w.tokens[key] = cachedToken{token: tr.Status.Token, renewAt: time.Now().Add(life * 8 / 10)}
	return tr.Status.Token, nil
}
