package images

import (
	"archive/tar"
	"context"
	"fmt"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUpstreamVersion(t *testing.T) {
	cases := map[string]string{
		"5:7.0.15-1~deb12u10":   "7.0.15",
		"5:8.0.2-3+deb13u3":     "8.0.2",
		"8.0.1+dfsg1-1~bpo12+1": "8.0.1",
		"8.1.1+dfsg1-3+deb13u3": "8.1.1",
		"1.2.3":                 "1.2.3",
	}
	for in, want := range cases {
		if got := upstreamVersion(in); got != want {
			t.Errorf("upstreamVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDpkgInstalled(t *testing.T) {
	status := "Package: redis-server\nStatus: install ok installed\nVersion: 5:7.0.15-1~deb12u10\nDescription: x\n y\n\n" +
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n" +
		"Package: mawk\nStatus: install ok installed\nPriority: required\nVersion: 1.3.4.20200120-3.1\n"
	want := map[string]string{"redis-server": "5:7.0.15-1~deb12u10", "mawk": "1.3.4.20200120-3.1"}
	if diff := cmp.Diff(want, dpkgInstalled([]byte(status))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestDebianRecipes checks the recipes' promises that need no build: the
// tag is the version, and the official commands are all linked.
func TestDebianRecipes(t *testing.T) {
	for _, d := range debianImages() {
		if !strings.HasSuffix(d.ref, ":"+d.version) {
			t.Errorf("%s: ref %s does not end in the version %s the build checks", d.name, d.ref, d.version)
		}
		prefix := strings.SplitN(d.name, "-", 2)[0] // redis or valkey
		for _, c := range []string{"server", "sentinel", "cli"} {
			if _, ok := d.commands[prefix+"-"+c]; !ok {
				t.Errorf("%s: no %s-%s in /usr/local/bin", d.name, prefix, c)
			}
			// The official Valkey image links the redis-* names too.
			if _, ok := d.commands["redis-"+c]; !ok {
				t.Errorf("%s: no redis-%s in /usr/local/bin", d.name, c)
			}
		}
		if d.cmd != prefix+"-server" || d.user != prefix {
			t.Errorf("%s: CMD %s user %s, want %s-server and %s like the official image", d.name, d.cmd, d.user, prefix, prefix)
		}
	}
}

// TestDebianImages builds (or reads from the shared cache, the one
// `go run ./cmd/images build` fills) the four Redis and Valkey images and
// checks that they are laid out like the official images. Cold, this takes
// several minutes per image; -short skips it.
func TestDebianImages(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not building the Debian images (minutes each when not cached); run `go run ./cmd/images build` then this test")
	}
	names := []string{"redis-7.0", "valkey-8.0", "redis-8.0", "valkey-8.1"}
	imgs, err := Build(context.Background(), Options{Only: names, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	recipes := map[string]debianImage{}
	for _, d := range debianImages() {
		recipes[d.ref] = d
	}
	for _, img := range imgs {
		d := recipes[img.Ref]
		t.Run(d.name, func(t *testing.T) {
			checkArchive(t, img)
			i := openImage(t, img)
			cf := configOf(t, i)
			if !cmp.Equal(cf.Config.Cmd, []string{d.cmd}) || cf.Config.WorkingDir != "/data" || cf.Config.User != "" || len(cf.Config.Entrypoint) != 0 {
				t.Errorf("config Cmd %v WorkingDir %q User %q Entrypoint %v; want [%s] /data, root and none like the official image",
					cf.Config.Cmd, cf.Config.WorkingDir, cf.Config.User, cf.Config.Entrypoint, d.cmd)
			}
			files := layerFiles(t, i)
			checkDebianLayout(t, d, files)
		})
	}
}

func checkDebianLayout(t *testing.T, d debianImage, files map[string]layerFile) {
	t.Helper()
	uid := fmt.Sprint(serviceUID)
	if p := string(files["etc/passwd"].data); !strings.Contains(p, "\n"+d.user+":x:"+uid+":"+uid+":") {
		t.Errorf("etc/passwd has no %s with uid/gid %s:\n%s", d.user, uid, p)
	}
	if g := string(files["etc/group"].data); !strings.Contains(g, "\n"+d.user+":x:"+uid+":") {
		t.Errorf("etc/group has no %s with gid %s:\n%s", d.user, uid, g)
	}
	owned := func(name string) {
		t.Helper()
		f, ok := files[name]
		if !ok {
			t.Errorf("no %s", name)
			return
		}
		if f.hdr.Uid != serviceUID || f.hdr.Gid != serviceUID {
			t.Errorf("%s is owned by %d:%d, want %d:%d", name, f.hdr.Uid, f.hdr.Gid, serviceUID, serviceUID)
		}
	}
	owned("data/")
	// Made by the package's maintainer script: uid 999 here proves the
	// user existed before the package was installed.
	owned("var/lib/" + d.user + "/")

	for name, target := range d.commands {
		l, ok := files["usr/local/bin/"+name]
		if !ok || l.hdr.Typeflag != tar.TypeSymlink || l.hdr.Linkname != target {
			t.Errorf("usr/local/bin/%s is not a symlink to %s", name, target)
			continue
		}
		if _, ok := resolve(files, target); !ok {
			t.Errorf("usr/local/bin/%s -> %s, which is not in the image", name, target)
		}
	}
	// Scripts in people's manifests need a shell and these.
	for _, tool := range []string{"sh", "sed", "grep", "awk", "cat", "mkdir", "cp", "hostname"} {
		if _, ok := resolve(files, "/usr/bin/"+tool); !ok {
			if _, ok := resolve(files, "/bin/"+tool); !ok {
				t.Errorf("no %s in /usr/bin or /bin", tool)
			}
		}
	}
	for name, f := range files {
		switch {
		case f.hdr.Typeflag == tar.TypeChar || f.hdr.Typeflag == tar.TypeBlock:
			t.Errorf("device node %s in the layer", name)
		case strings.HasPrefix(name, "var/lib/apt/lists/") && f.hdr.Typeflag == tar.TypeReg && !strings.HasSuffix(name, "/lock"):
			t.Errorf("apt list %s left in the image", name)
		case strings.HasPrefix(name, "usr/share/man/") && f.hdr.Typeflag == tar.TypeReg:
			t.Errorf("man page %s left in the image", name)
		case strings.HasPrefix(name, "usr/share/doc/") && f.hdr.Typeflag == tar.TypeReg && path.Base(name) != "copyright":
			t.Errorf("doc %s left in the image", name)
		case strings.HasPrefix(name, "var/cache/apt/archives/") && strings.HasSuffix(name, ".deb"):
			t.Errorf("package %s left in the image", name)
		case name == "usr/sbin/policy-rc.d":
			t.Errorf("%s left in the image: services would never start in it", name)
		}
	}
}

// resolve follows symlinks (in the path's directories too, like /bin ->
// usr/bin on merged-/usr Debian) to an entry of the layer.
func resolve(files map[string]layerFile, p string) (layerFile, bool) {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	for range 20 {
		parts := strings.Split(p, "/")
		moved := false
		for i := 1; i <= len(parts); i++ {
			prefix := strings.Join(parts[:i], "/")
			f, ok := files[prefix]
			if !ok {
				f, ok = files[prefix+"/"]
			}
			if !ok {
				return layerFile{}, false
			}
			if f.hdr.Typeflag != tar.TypeSymlink {
				if i == len(parts) {
					return f, true
				}
				continue
			}
			target := f.hdr.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir("/"+prefix), target)
			}
			p = strings.TrimPrefix(path.Clean(path.Join(target, strings.Join(parts[i:], "/"))), "/")
			moved = true
			break
		}
		if !moved {
			return layerFile{}, false
		}
	}
	return layerFile{}, false
}
