package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"
)

// filterRootfs copies mmdebstrap's tarball to a layer, leaving out the
// device nodes it makes in /dev (the runtime mounts its own /dev, and a
// layer with device nodes needs privileges to unpack), and returns the
// installed packages and their versions from the dpkg status file.
func filterRootfs(in, out string) (map[string]string, error) {
	src, err := os.Open(in)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	bw := bufio.NewWriterSize(dst, 1<<20)
	tr := tar.NewReader(bufio.NewReaderSize(src, 1<<20))
	tw := tar.NewWriter(bw)
	var pkgs map[string]string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", in, err)
		}
		switch h.Typeflag {
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("write %s: %w", out, err)
		}
		var body io.Reader = tr
		if strings.TrimPrefix(h.Name, "./") == "var/lib/dpkg/status" {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			pkgs = dpkgInstalled(b)
			body = bytes.NewReader(b)
		}
		if _, err := io.Copy(tw, body); err != nil {
			return nil, fmt.Errorf("write %s: %w", out, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if pkgs == nil {
		return nil, fmt.Errorf("%s has no var/lib/dpkg/status: not a Debian root file system", in)
	}
	return pkgs, dst.Close()
}

// dpkgInstalled maps package to version for the installed packages of a
// dpkg status file.
func dpkgInstalled(status []byte) map[string]string {
	pkgs := map[string]string{}
	for _, stanza := range strings.Split(string(status), "\n\n") {
		var name, version string
		installed := false
		for _, l := range strings.Split(stanza, "\n") {
			k, v, _ := strings.Cut(l, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "Package":
				name = v
			case "Version":
				version = v
			case "Status":
				installed = strings.HasSuffix(v, " installed")
			}
		}
		if name != "" && installed {
			pkgs[name] = version
		}
	}
	return pkgs
}

// runLogged runs a long command, passing its output to log line by line
// (prefixed with the image's name) as it comes, and returns an error with
// the last lines of it when the command fails.
func runLogged(ctx context.Context, log io.Writer, prefix, name string, args ...string) error {
	tail := &tailWriter{log: log, prefix: "  " + prefix + ": ", keep: 30}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = tail, tail
	// On cancellation, ask (mmdebstrap unmounts /proc and /dev from its
	// chroot and removes its temp dir on SIGINT), and kill only if it
	// doesn't finish.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Minute
	err := cmd.Run()
	tail.flush()
	if err != nil {
		return fmt.Errorf("%w; its last lines:\n%s", err, strings.Join(tail.lines, "\n"))
	}
	return nil
}

// tailWriter forwards whole lines to log and remembers the last keep ones.
type tailWriter struct {
	mu     sync.Mutex
	log    io.Writer
	prefix string
	keep   int
	buf    []byte
	lines  []string
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *tailWriter) line(l string) {
	fmt.Fprintln(w.log, w.prefix+l)
	w.lines = append(w.lines, l)
	if len(w.lines) > w.keep {
		w.lines = w.lines[len(w.lines)-w.keep:]
	}
}

func (w *tailWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
