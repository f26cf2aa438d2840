package kubelet

import (
	"strings"
	"testing"

	"k8s.io/utils/ptr"
)

func TestPrologue(t *testing.T) {
	ls := launchSpec{
		Hostname: "redis-0",
		Mounts: []bindMount{
			{Source: "/r/pods/x/etc/hosts", Target: "/etc/hosts", File: true},
			{Source: "/r/pods/x/volumes/conf", Target: "/conf", ReadOnly: true},
			{Source: "/r/it's", Target: "/data"},
		},
		ReadOnlyRoot: true, RemountRO: []string{"/work"},
		WorkingDir: "/data", UID: ptr.To(int64(1000)), GID: ptr.To(int64(1000)), Groups: []int64{2000},
		NoNewPrivs: true, DropCaps: true,
	}
	got := ls.prologue()
	for _, want := range []string{
		"set -e\n",
		"printf %s 'redis-0' > /proc/sys/kernel/hostname\n",
		"mount -o remount,bind,ro /\n",
		"mount -o remount,bind,ro '/work' 2>/dev/null || true\n",
		"[ -e '/etc/hosts' ] || : > '/etc/hosts'\nmount --bind '/r/pods/x/etc/hosts' '/etc/hosts'\n",
		"mount --bind '/r/pods/x/volumes/conf' '/conf'\nmount -o remount,bind,ro '/conf'\n",
		`mount --bind '/r/it'\''s' '/data'` + "\n",
		"cd '/data'\n",
		"exec setpriv --reuid=1000 --regid=1000 --groups=2000 --no-new-privs --inh-caps=-all --bounding-set=-all -- \"$@\"\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("prologue lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "remount,bind,ro /\n") < strings.LastIndex(got, "mount --bind") {
		t.Errorf("root must be made read-only after the volume binds (a bind copies its source mount's flags):\n%s", got)
	}
	plain := launchSpec{Hostname: "h"}.prologue()
	if !strings.HasSuffix(plain, "cd '/'\nprintf ready >&3\nexec 3>&-\nexec \"$@\"\n") || strings.Contains(plain, "setpriv") {
		t.Errorf("plain prologue:\n%s", plain)
	}
}
