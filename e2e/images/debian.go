package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	debianMirror   = "http://deb.debian.org/debian"
	debianSecurity = "http://deb.debian.org/debian-security"
	redis70Ref     = "docker.io/library/redis:7.0.15"
	// debCacheToken stands for the shared .deb cache directory in the
	// mmdebstrap arguments, so that where the cache lives is not part of
	// an image's key.
	debCacheToken = "@DEBCACHE@"
	// serviceUID is the uid and gid of the redis (valkey) user in the
	// official images, which manifests' runAsUser and fsGroup rely on.
	serviceUID = 999
	// mergedUsrHooks ships with mmdebstrap (1.3 and later).
	mergedUsrHooks = "/usr/share/mmdebstrap/hooks/merged-usr"
)

// debianImage is a Redis or Valkey image made from Debian packages, laid
// out like the official image: the server's user and group at uid/gid 999,
// /data owned by them and the working directory, the commands under their
// official names in /usr/local/bin, CMD the server. It keeps Debian's
// Essential set (sh, coreutils, sed, grep) plus mawk, since people's
// manifests run shell scripts in these images (seed 002's update-node.sh).
type debianImage struct {
	name  string
	ref   string
	suite string   // selects the Essential set
	apt   []string // sources.list lines
	// include are the packages to install; "pkg/release" takes one from a
	// release that is not the default (backports).
	include []string
	// mergedUsrHook: bookworm's init-system-helpers depends on usrmerge |
	// usr-is-merged, and apt would pick usrmerge, which pulls in all of perl
	// (60 MB); mmdebstrap's merged-usr hooks make the /usr symlinks
	// themselves and install usr-is-merged instead.
	mergedUsrHook bool
	// server is the package whose upstream version must be the tag's.
	server  string
	version string
	user    string
	// commands maps each name the official image has in /usr/local/bin to
	// the Debian binary it runs.
	commands map[string]string
	cmd      string
}

func debianImages() []debianImage {
	bookworm := []string{
		"deb " + debianMirror + " bookworm main",
		"deb " + debianMirror + " bookworm-updates main",
		"deb " + debianSecurity + " bookworm-security main",
	}
	trixie := []string{
		"deb " + debianMirror + " trixie main",
		"deb " + debianMirror + " trixie-updates main",
		"deb " + debianSecurity + " trixie-security main",
	}
	return []debianImage{
		{
			name: "redis-7.0", ref: redis70Ref, suite: "bookworm", apt: bookworm, mergedUsrHook: true,
			include: []string{"redis-server", "redis-sentinel", "redis-tools"},
			server:  "redis-server", version: "7.0.15", user: "redis",
			commands: redisCommands(), cmd: "redis-server",
		},
		{
			name: "valkey-8.0", ref: "docker.io/valkey/valkey:8.0.1", suite: "bookworm", mergedUsrHook: true,
			apt:     append(bookworm, "deb "+debianMirror+" bookworm-backports main"),
			include: []string{"valkey-server/bookworm-backports", "valkey-sentinel/bookworm-backports", "valkey-tools/bookworm-backports"},
			server:  "valkey-server", version: "8.0.1", user: "valkey",
			commands: valkeyCommands(), cmd: "valkey-server",
		},
		{
			name: "redis-8.0", ref: "docker.io/library/redis:8.0.2", suite: "trixie", apt: trixie,
			include: []string{"redis-server", "redis-sentinel", "redis-tools"},
			server:  "redis-server", version: "8.0.2", user: "redis",
			commands: redisCommands(), cmd: "redis-server",
		},
		{
			name: "valkey-8.1", ref: "docker.io/valkey/valkey:8.1.1", suite: "trixie", apt: trixie,
			include: []string{"valkey-server", "valkey-sentinel", "valkey-tools"},
			server:  "valkey-server", version: "8.1.1", user: "valkey",
			commands: valkeyCommands(), cmd: "valkey-server",
		},
	}
}

var serverTools = []string{"server", "sentinel", "cli", "benchmark", "check-aof", "check-rdb"}

func redisCommands() map[string]string {
	m := map[string]string{}
	for _, t := range serverTools {
		m["redis-"+t] = "/usr/bin/redis-" + t
	}
	return m
}

// valkeyCommands include the redis-* names: Valkey's `make install`, which
// the official image runs, links them to the valkey-* binaries.
func valkeyCommands() map[string]string {
	m := map[string]string{}
	for _, t := range serverTools {
		m["valkey-"+t] = "/usr/bin/valkey-" + t
		m["redis-"+t] = "/usr/bin/valkey-" + t
	}
	return m
}

// mmdebstrapArgs is the whole mmdebstrap command line but the output path;
// it is also what the cache key hashes. Debian's maintainer scripts cannot
// start the services: mmdebstrap installs a policy-rc.d that forbids it and
// replaces start-stop-daemon while it installs, and there is no init.
func (d debianImage) mmdebstrapArgs() []string {
	u := fmt.Sprint(serviceUID)
	args := []string{
		"--variant=essential",
		"--mode=auto",
		"--format=tar",
		"--include=" + strings.Join(append([]string{"mawk"}, d.include...), ","),
		"--aptopt=APT::Install-Recommends \"false\"",
		"--aptopt=Acquire::Languages \"none\"",
		// No docs, man pages or translations in the image; copyrights stay.
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/info/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-include=/usr/share/doc/*/copyright",
		"--dpkgopt=path-exclude=/usr/share/lintian/*",
		// Reuse downloaded packages across builds (apt checks their hashes).
		"--skip=essential/unlink",
		"--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
		"--setup-hook=sync-in " + debCacheToken + " /var/cache/apt/archives/",
		// The user first, as the official images do, so that the packages'
		// maintainer scripts find it (adduser keeps an existing system user)
		// and their files get uid 999, not the next free system uid.
		"--essential-hook=set -e; " +
			"echo '" + d.user + ":x:" + u + ":" + u + "::/home/" + d.user + ":/bin/sh' >> \"$1\"/etc/passwd; " +
			"echo '" + d.user + ":x:" + u + ":' >> \"$1\"/etc/group",
		"--customize-hook=" + d.layoutHook(),
		// The server must run in the tree as built (all its libraries there).
		"--customize-hook=chroot \"$1\" /usr/local/bin/" + d.cmd + " --version",
		"--customize-hook=sync-out /var/cache/apt/archives " + debCacheToken,
	}
	if d.mergedUsrHook {
		args = append(args, "--hook-dir="+mergedUsrHooks)
	}
	return append(args, d.suite)
}

// layoutHook lays the tree out like the official image. The runtime
// provides resolv.conf and hostname, so the builder's are dropped.
func (d debianImage) layoutHook() string {
	u := fmt.Sprint(serviceUID)
	var b strings.Builder
	b.WriteString("set -e; cd \"$1\"; mkdir -p data usr/local/bin; chown " + u + ":" + u + " data; ")
	for _, name := range sortedKeys(d.commands) {
		fmt.Fprintf(&b, "test -e .%[2]s || { echo 'missing %[2]s' >&2; exit 1; }; ln -sfn %[2]s usr/local/bin/%[1]s; ", name, d.commands[name])
	}
	b.WriteString("rm -f etc/resolv.conf etc/hostname")
	return b.String()
}

func (d debianImage) config() v1.Config {
	return v1.Config{
		Cmd:          []string{d.cmd},
		Env:          []string{"PATH=" + defaultPath},
		WorkingDir:   "/data",
		ExposedPorts: map[string]struct{}{"6379/tcp": {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Labels: map[string]string{
			"org.opencontainers.image.version":   d.version,
			"org.opencontainers.image.base.name": "debian:" + d.suite,
		},
	}
}

func (d debianImage) target(debCache string) target {
	return target{
		name: d.name,
		ref:  d.ref,
		what: "mmdebstrap " + d.suite,
		key: func(ctx context.Context) (string, error) {
			ver, err := mmdebstrapVersion(ctx)
			if err != nil {
				return "", err
			}
			return d.key(ver), nil
		},
		build: func(ctx context.Context, work string, log io.Writer) (v1.Image, error) {
			return d.build(ctx, work, debCache, log)
		},
	}
}

// key hashes everything the image is made of: the mmdebstrap command line
// (suite, packages, hooks), the sources, mmdebstrap's version, the version
// the tag names and the image config. What the mirror serves is not in it:
// a Debian update reaches a cached image only when something else changes.
func (d debianImage) key(mmdebstrapVersion string) string {
	k := newKey("debian")
	k.add("ref", d.ref)
	k.add("mmdebstrap", mmdebstrapVersion)
	k.add("args", d.mmdebstrapArgs()...)
	k.add("sources", d.apt...)
	k.add("server", d.server, d.version)
	c := d.config()
	k.add("config", fmt.Sprint(c.Cmd, c.Env, c.WorkingDir, c.ExposedPorts, c.Volumes, c.Labels))
	return k.String()
}

func (d debianImage) build(ctx context.Context, work, debCache string, log io.Writer) (v1.Image, error) {
	if strings.ContainsAny(debCache, " \t\n") {
		return nil, fmt.Errorf("the image cache path %q has white space, which mmdebstrap's sync-in hook can't take; set Options.CacheDir", debCache)
	}
	if err := os.MkdirAll(debCache, 0o755); err != nil {
		return nil, err
	}
	// One mmdebstrap at a time: they share the .deb cache, and each keeps
	// both cores busy anyway. The lock is beside the cache, not in it, since
	// sync-out rewrites the cache's files.
	unlock, err := lockFile(debCache + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	rootfs := filepath.Join(work, "rootfs.tar")
	var args []string
	for _, a := range d.mmdebstrapArgs() {
		args = append(args, strings.ReplaceAll(a, debCacheToken, debCache))
	}
	args = append(args, rootfs)
	args = append(args, d.apt...)
	if err := runLogged(ctx, log, d.name, "mmdebstrap", args...); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("mmdebstrap %s: %w", d.suite, ctx.Err())
		}
		return nil, fmt.Errorf("mmdebstrap %s: %w (is %s reachable?)", d.suite, err, debianMirror)
	}
	layerPath := filepath.Join(work, "layer.tar")
	pkgs, err := filterRootfs(rootfs, layerPath)
	if err != nil {
		return nil, err
	}
	got, ok := pkgs[d.server]
	if !ok {
		return nil, fmt.Errorf("%s is not installed in the root file system", d.server)
	}
	if upstreamVersion(got) != d.version {
		return nil, fmt.Errorf("the Debian %s archive now has %s %s, but the image is tagged %s: update version and ref of %q in e2e/images/debian.go (and the manifests that name it)",
			d.suite, d.server, got, d.version, d.name)
	}
	fmt.Fprintf(log, "  %s: %s %s, rootfs %s\n", d.name, d.server, got, humanSize(fileSize(layerPath)))
	layer, err := tarball.LayerFromFile(layerPath, tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	cfg := d.config()
	cfg.Labels["org.debian.package.version"] = d.server + "=" + got
	return imageOf(layer, cfg)
}

// upstreamVersion strips a Debian version's epoch and revision:
// "5:7.0.15-1~deb12u10" → "7.0.15", "8.1.1+dfsg1-3+deb13u3" → "8.1.1".
func upstreamVersion(v string) string {
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexAny(v, "+~"); i >= 0 {
		v = v[:i]
	}
	return v
}

func mmdebstrapVersion(ctx context.Context) (string, error) {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", fmt.Errorf("the Redis and Valkey images are made with mmdebstrap, which is not on PATH: run e2e/hack/install-image-deps.sh (apt-get install mmdebstrap uidmap)")
	}
	out, err := exec.CommandContext(ctx, "mmdebstrap", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("mmdebstrap --version: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
