package kubelet

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// bindMount is one bind mount made in a container's private mount namespace.
type bindMount struct {
	Source, Target string
	ReadOnly       bool
	File           bool // target is a file (subPath of a file, /etc/hosts)
}

// launchSpec is everything the in-namespace prologue does before it execs
// the container's binary.
type launchSpec struct {
	Hostname     string
	ReadOnlyRoot bool
	// RemountRO are further host mount points made read-only with a
	// read-only root filesystem (best effort: a failure is ignored).
	RemountRO  []string
	Mounts     []bindMount // parents before children
	WorkingDir string
	UID, GID   *int64
	Groups     []int64
	NoNewPrivs bool
	DropCaps   bool // capabilities.drop: [ALL]
	// BinSource, if set, is bind-mounted at BinTarget on a small tmpfs at
	// binDir: a non-root container cannot reach a binary below a private
	// directory (a test's 0700 temp dir), but can reach it there.
	BinSource, BinTarget string
}

// binDir is where BinSource appears inside the container.
const binDir = "/run/kubelet-bin"

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// prologue renders the /bin/sh script that runs in the new mount and UTS
// namespaces and then execs "$@". Paths only: no secret ever appears here,
// so the script can show up in argv.
func (ls launchSpec) prologue() string {
	var b strings.Builder
	b.WriteString("set -e\n")
	fmt.Fprintf(&b, "printf %%s %s > /proc/sys/kernel/hostname\n", shellQuote(ls.Hostname))
	for _, m := range ls.Mounts {
		t := shellQuote(m.Target)
		// A target nested in an earlier mount is created inside that
		// volume, as runc does; top-level targets were created (and
		// recorded) by the kubelet on the host already.
		if m.File {
			fmt.Fprintf(&b, "[ -e %s ] || : > %s\n", t, t)
		} else {
			fmt.Fprintf(&b, "[ -d %s ] || mkdir -p %s\n", t, t)
		}
		fmt.Fprintf(&b, "mount --bind %s %s\n", shellQuote(m.Source), t)
		if m.ReadOnly {
			fmt.Fprintf(&b, "mount -o remount,bind,ro %s\n", t)
		}
	}
	if ls.BinSource != "" {
		fmt.Fprintf(&b, "mount -t tmpfs -o mode=0755,size=64k kubelet-bin %s\n", binDir)
		fmt.Fprintf(&b, ": > %s\n", shellQuote(ls.BinTarget))
		fmt.Fprintf(&b, "mount --bind %s %s\n", shellQuote(ls.BinSource), shellQuote(ls.BinTarget))
	}
	// After the binds: a bind mount copies its source mount's flags, so
	// binding from a read-only root would make the volumes read-only too.
	if ls.ReadOnlyRoot {
		b.WriteString("mount -o remount,bind,ro /\n")
		for _, m := range ls.RemountRO {
			fmt.Fprintf(&b, "mount -o remount,bind,ro %s 2>/dev/null || true\n", shellQuote(m))
		}
	}
	wd := ls.WorkingDir
	if wd == "" {
		wd = "/"
	}
	fmt.Fprintf(&b, "cd %s\n", shellQuote(wd))
	var priv []string
	if ls.UID != nil || ls.GID != nil || len(ls.Groups) > 0 {
		if ls.UID != nil {
			priv = append(priv, "--reuid="+strconv.FormatInt(*ls.UID, 10))
		}
		if ls.GID != nil {
			priv = append(priv, "--regid="+strconv.FormatInt(*ls.GID, 10))
		}
		if len(ls.Groups) > 0 {
			gs := make([]string, len(ls.Groups))
			for i, g := range ls.Groups {
				gs[i] = strconv.FormatInt(g, 10)
			}
			priv = append(priv, "--groups="+strings.Join(gs, ","))
		} else {
			priv = append(priv, "--clear-groups")
		}
	}
	if ls.NoNewPrivs {
		priv = append(priv, "--no-new-privs")
	}
	if ls.DropCaps {
		priv = append(priv, "--inh-caps=-all", "--bounding-set=-all")
	}
	// Tell the kubelet the container is set up (fd 3, see startProcess),
	// and keep that descriptor out of the container.
	b.WriteString("printf ready >&3\nexec 3>&-\n")
	if len(priv) > 0 {
		fmt.Fprintf(&b, "exec setpriv %s -- \"$@\"\n", strings.Join(priv, " "))
	} else {
		b.WriteString("exec \"$@\"\n")
	}
	return b.String()
}

// reachableByOthers reports whether a user that is neither owner nor group
// member can execute p: every ancestor directory searchable and p
// executable by others.
func reachableByOthers(p string) bool {
	info, err := os.Stat(p)
	if err != nil || info.Mode().Perm()&0o001 == 0 {
		return false
	}
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil || info.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == "/" {
			return true
		}
	}
}
