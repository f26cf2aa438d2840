package kubelet

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func checkRunAsNonRoot(pod *v1.Pod, c *v1.Container) error {
	nonRoot, uid := false, (*int64)(nil)
	if sc := pod.Spec.SecurityContext; sc != nil {
		nonRoot = sc.RunAsNonRoot != nil && *sc.RunAsNonRoot
		uid = sc.RunAsUser
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
	}
	if nonRoot && (uid == nil || *uid == 0) {
		return fmt.Errorf("container %q has runAsNonRoot and would run as root (these host binaries have no image user): set runAsUser", c.Name)
	}
	return nil
}

// mounts lists the container's bind mounts: the pod's /etc files, then the
// volume mounts, parents before children.
func (w *podWorker) mounts(pod *v1.Pod, c *v1.Container) ([]bindMount, error) {
	var out []bindMount
	taken := map[string]bool{}
	for _, m := range c.VolumeMounts {
		taken[path.Clean(m.MountPath)] = true
	}
	for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
		if !taken["/etc/"+f] {
			out = append(out, bindMount{Source: filepath.Join(w.dir, "etc", f), Target: "/etc/" + f, File: true})
		}
	}
	vols := map[string]*v1.Volume{}
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	vms := append([]v1.VolumeMount(nil), c.VolumeMounts...)
	sort.SliceStable(vms, func(i, j int) bool {
		return strings.Count(path.Clean(vms[i].MountPath), "/") < strings.Count(path.Clean(vms[j].MountPath), "/")
	})
	for _, m := range vms {
		v := vols[m.Name]
		if v == nil {
			return nil, fmt.Errorf("volumeMount %q: no volume of that name in the pod", m.Name)
		}
		src := w.volumeDir(v)
		apiBacked := v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil
		file := false
		if m.SubPath != "" {
			if err := checkVolumePath(m.SubPath); err != nil {
				return nil, fmt.Errorf("volumeMount %q subPath: %w", m.Name, err)
			}
			src = filepath.Join(src, m.SubPath)
			info, err := os.Stat(src)
			switch {
			case os.IsNotExist(err) && !apiBacked:
				if err := os.MkdirAll(src, 0o777); err != nil {
					return nil, fmt.Errorf("volumeMount %q subPath %q: %w", m.Name, m.SubPath, err)
				}
			case err != nil:
				return nil, fmt.Errorf("volumeMount %q subPath %q: %w", m.Name, m.SubPath, err)
			default:
				file = !info.IsDir()
			}
		}
		out = append(out, bindMount{Source: src, Target: path.Clean(m.MountPath), ReadOnly: m.ReadOnly || apiBacked, File: file})
	}
	// Top-level targets must exist on the host; nested ones are created by
	// the prologue inside the volume that contains them.
	for _, m := range out {
		if nestedIn(m.Target, out) {
			continue
		}
		if err := w.k.paths.ensure(m.Target, m.File); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nestedIn reports whether target lies under another mount's target.
func nestedIn(target string, ms []bindMount) bool {
	for _, m := range ms {
		if m.Target != target && !m.File && strings.HasPrefix(target, strings.TrimSuffix(m.Target, "/")+"/") {
			return true
		}
	}
	return false
}

// inMounts reports whether an absolute path lies inside a volume mount.
func inMounts(ms []bindMount) func(string) bool {
	return func(p string) bool {
		p = path.Clean(p)
		for _, m := range ms {
			if strings.HasPrefix(m.Target, "/etc/") && m.File {
				continue
			}
			if p == m.Target || strings.HasPrefix(p, m.Target+"/") {
				return true
			}
		}
		return false
	}
}

// launchSpec derives hostname, credentials and root filesystem settings.
func (w *podWorker) launchSpec(pod *v1.Pod, c *v1.Container, mounts []bindMount) launchSpec {
	ls := launchSpec{Hostname: podHostname(pod), Mounts: mounts, WorkingDir: c.WorkingDir}
	var supp []int64
	if sc := pod.Spec.SecurityContext; sc != nil {
		ls.UID, ls.GID = sc.RunAsUser, sc.RunAsGroup
		if sc.FSGroup != nil {
			supp = append(supp, *sc.FSGroup)
		}
		supp = append(supp, sc.SupplementalGroups...)
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			ls.UID = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			ls.GID = sc.RunAsGroup
		}
		ls.ReadOnlyRoot = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		ls.NoNewPrivs = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
		if sc.Capabilities != nil {
			for _, d := range sc.Capabilities.Drop {
				ls.DropCaps = ls.DropCaps || d == "ALL"
			}
		}
	}
	if ls.UID != nil && ls.GID == nil {
		ls.GID = ptr.To(int64(0))
	}
	ls.Groups = supp
	if ls.ReadOnlyRoot {
		ls.RemountRO = w.k.hostMounts()
	}
	return ls
}

// prepareWorkingDir picks the default working directory: redis images work
// in /data (their WORKDIR) when a volume is mounted there; otherwise a
// per-container scratch directory stands in for the image's writable layer,
// so files written to the working directory do not land in the host's /.
func (w *podWorker) prepareWorkingDir(ls *launchSpec, c *v1.Container, mounts []bindMount) error {
	if ls.WorkingDir != "" {
		if inMounts(mounts)(ls.WorkingDir) {
			return nil
		}
		return w.k.paths.ensure(ls.WorkingDir, false)
	}
	if classifyImage(c.Image) == imageRedis && inMounts(mounts)("/data") {
		ls.WorkingDir = "/data"
		return nil
	}
	dir := filepath.Join(w.dir, "workdir", c.Name)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	ls.WorkingDir = dir
	return os.Chmod(dir, 0o777)
}
