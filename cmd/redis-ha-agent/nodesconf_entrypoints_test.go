package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog"
)

// hashDNS answers every name with an IPv4 and an IPv6 address derived
// from it, except, with gaps, every name whose hash is odd (not in DNS yet).
func hashDNS(gaps bool) func(context.Context, string) ([]string, error) {
	return func(_ context.Context, host string) ([]string, error) {
		h := fnv.New32a()
		h.Write([]byte(host))
		v := h.Sum32()
		if gaps && v%2 == 1 {
			return nil, errors.New("lookup " + host + ": no such host")
		}
		return []string{fmt.Sprintf("10.77.%d.%d", v>>8&0xff, v&0xff), fmt.Sprintf("fd00::77:%x", v&0xffff)}, nil
	}
}

// runCommand runs one command line of the real CLI, with the DNS faked.
func runCommand(t *testing.T, args []string, dns func(context.Context, string) ([]string, error)) error {
	t.Helper()
	var cli CLI
	p, err := kong.New(&cli, kong.Writers(io.Discard, io.Discard), kong.Exit(func(int) { t.Fatalf("%v: kong exited", args) }))
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := p.Parse(args)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return kctx.Run(&Globals{Ctx: t.Context(), Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Stdout: io.Discard, LookupHost: dns})
}

// TestNodesConfEntryPointsAgree runs `init --mode cluster` and `nodesconf
// rewrite` on the same nodes.conf, pod IP and DNS answers, for every file
// of nodesconf's testdata (valid and corrupt ones): the files they leave must
// be byte-identical, and they fail alike.
func TestNodesConfEntryPointsAgree(t *testing.T) {
	for _, k := range []string{"KUBECONFIG", "KUBERNETES_SERVICE_HOST", "REDIS_HA_DNS_TIMEOUT", "REDIS_HA_MOVE_CORRUPT_ASIDE", "REDIS_HA_INIT_TIMEOUT", "REDIS_HA_MODE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	files, err := filepath.Glob("../../nodesconf/testdata/*.conf")
	if err != nil || len(files) < 20 {
		t.Fatalf("nodesconf testdata: %d files, %v", len(files), err)
	}
	changed := 0
	for _, file := range files {
		input, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, podIP := range []string{"10.9.9.9", "fd00::99"} {
			for _, gaps := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/gaps=%v", filepath.Base(file), podIP, gaps)
				t.Run(name, func(t *testing.T) {
					dirs := [2]string{t.TempDir(), t.TempDir()}
					for _, d := range dirs {
						if err := os.WriteFile(filepath.Join(d, "nodes.conf"), input, 0o644); err != nil {
							t.Fatal(err)
						}
					}
					// No wait: the answers do not change between rounds.
					initErr := runCommand(t, []string{"init", "--mode", "cluster", "--pod-name", "redis-cluster-3", "--pod-ip", podIP,
						"--nodes-conf", filepath.Join(dirs[0], "nodes.conf"), "--redis-conf-include", filepath.Join(dirs[0], "conf", "redis-ha.conf"),
						"--init-timeout", "0s"}, hashDNS(gaps))
					rewriteErr := runCommand(t, []string{"nodesconf", "rewrite", "--pod-ip", podIP,
						"--nodes-conf", filepath.Join(dirs[1], "nodes.conf"), "--dns-timeout", "0s"}, hashDNS(gaps))
					if (initErr == nil) != (rewriteErr == nil) {
						t.Fatalf("init: %v; nodesconf rewrite: %v; want both to fail or neither", initErr, rewriteErr)
					}
					a, errA := os.ReadFile(filepath.Join(dirs[0], "nodes.conf"))
					b, errB := os.ReadFile(filepath.Join(dirs[1], "nodes.conf"))
					if errA != nil || errB != nil {
						t.Fatalf("read back: %v, %v", errA, errB)
					}
					if !bytes.Equal(a, b) {
						t.Errorf("init wrote\n%s\nnodesconf rewrite wrote\n%s", a, b)
					}
					if !bytes.Equal(a, input) {
						changed++
					}
				})
			}
		}
	}
	if changed < 20 {
		t.Errorf("only %d runs changed the file: the inputs do not exercise the rewrite", changed)
	}
}
