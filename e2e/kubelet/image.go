package kubelet

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Keys of Config.Binaries that the image mapping knows about.
const (
	BinAgent    = "redis-ha-agent"
	BinServer   = "redis-server"
	BinSentinel = "redis-sentinel"
	BinCLI      = "redis-cli"
)

// redisCommands are the binaries a redis image ships, mapped by basename.
func redisCommands() []string {
	return []string{BinServer, BinSentinel, BinCLI, "redis-check-aof", "redis-check-rdb", "redis-benchmark"}
}

// shellPath maps a shell's basename to the host shell that runs scripts
// written for it in any image ("" when base is no shell).
func shellPath(base string) string {
	switch base {
	case "sh", "ash", "dash":
		return "/bin/sh"
	case "bash":
		return "/bin/bash"
	}
	return ""
}

// hostTools are small POSIX tools every base image has; they run from the
// host's PATH, so init containers like `busybox sleep 1` work.
func hostTools() []string {
	return []string{
		"cat", "chmod", "chown", "cp", "date", "echo", "env", "false", "grep", "id",
		"ls", "mkdir", "mv", "printf", "rm", "sed", "sleep", "test", "touch", "true",
	}
}

// imageKind classifies an image by its repository name (registry, tag and
// digest ignored).
type imageKind int

const (
	imageGeneric imageKind = iota
	imageRedis
	imageAgent
)

// imageRepository strips the tag and digest of an image reference:
// "docker.io/library/redis:7.0@sha256:..." → "docker.io/library/redis".
func imageRepository(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	// A ':' after the last '/' is a tag; one before it is a registry port.
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		image = image[:i]
	}
	return image
}

func classifyImage(image string) imageKind {
	repo := imageRepository(image)
	switch {
	case strings.Contains(repo, "redis-ha-agent"):
		return imageAgent
	case contains([]string{"redis", "redis-sentinel", "redis-cluster"}, path.Base(repo)):
		// docker.io/library/redis and bitnami's redis, redis-sentinel and
		// redis-cluster images all ship the redis-* binaries.
		return imageRedis
	}
	return imageGeneric
}

// commandResolver turns a container's image, command and args into the argv
// of a host process. binaries maps a command basename to a host path;
// inVolume reports whether an absolute path lies inside one of the
// container's volume mounts (such a file, e.g. a script from a ConfigMap, is
// executed as is).
type commandResolver struct {
	binaries map[string]string
	inVolume func(p string) bool
}

// resolve returns the argv to exec, or an error naming the image and command
// and what can be mapped.
func (r commandResolver) resolve(image string, command, args []string) ([]string, error) {
	kind := classifyImage(image)
	argv := append(append([]string(nil), command...), args...)
	if len(command) == 0 {
		switch kind {
		case imageRedis:
			// The redis image's docker-entrypoint.sh: no args, or args that
			// look like options or a config file, mean redis-server.
			if len(args) == 0 || strings.HasPrefix(args[0], "-") || strings.HasSuffix(args[0], ".conf") {
				argv = append([]string{BinServer}, args...)
			}
		case imageAgent:
			argv = append([]string{BinAgent}, args...)
		default:
			if len(args) == 0 {
				return nil, fmt.Errorf("image %q: no command and no args, and this node agent has no image entrypoints: "+
					"set command in the pod spec", image)
			}
		}
	}
	bin, err := r.binary(kind, image, argv[0])
	if err != nil {
		return nil, err
	}
	argv[0] = bin
	return argv, nil
}

func (r commandResolver) binary(kind imageKind, image, cmd string) (string, error) {
	if path.IsAbs(cmd) && r.inVolume != nil && r.inVolume(cmd) {
		return cmd, nil
	}
	base := path.Base(cmd)
	switch {
	case kind == imageRedis && contains(redisCommands(), base),
		kind == imageAgent && base == BinAgent:
		if p := r.binaries[base]; p != "" {
			return p, nil
		}
		return "", fmt.Errorf("image %q command %q maps to host binary %q, but Config.Binaries[%q] is empty: "+
			"install it or set the path", image, cmd, base, base)
	case shellPath(base) != "":
		return shellPath(base), nil
	case contains(hostTools(), base):
		return base, nil // found through the container's PATH (the host's)
	}
	known := append(append(redisCommands(), BinAgent, "sh", "ash", "dash", "bash"), hostTools()...)
	sort.Strings(known)
	return "", fmt.Errorf("image %q command %q has no host binary: this node agent runs redis images' redis-* commands, "+
		"redis-ha-agent images' %s, shells, a few POSIX tools, or an absolute path inside a volume mount "+
		"(known basenames: %s); change the command or extend e2e/kubelet/image.go",
		image, cmd, BinAgent, strings.Join(known, " "))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
