package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"
)

// TestSeedCopyIsVerbatim keeps the seed's redis-sts.yml as published, so the
// overlay shows exactly what the drop-in changes: every change belongs in
// kustomization.yaml. The hash is of the YAML block of seed 002
// (shared/seeds/002_dad6432b413cca08.txt, "redis-sts.yml").
func TestSeedCopyIsVerbatim(t *testing.T) {
	const want = "22ed9c87be04f8dfc505ea247345860c7dc1fe53d63f62b9a6aa2c73974ef977"
	src, err := os.ReadFile("overlays/seed002-with-agent-init/redis-sts.yml")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(src)
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("overlays/seed002-with-agent-init/redis-sts.yml has sha256 %s, want the seed's %s: restore the file and patch it from kustomization.yaml", got, want)
	}
}

// TestSeedDropIn checks what the init-only overlay changes in the seed's
// StatefulSet: redis-server is started directly (no update-node.sh), and
// agent-init rewrites the nodes.conf the seed's redis.conf names.
func TestSeedDropIn(t *testing.T) {
	b := kustomize(t, "overlays/seed002-with-agent-init")
	redis := findContainer(b.sts.Spec.Template.Spec.Containers, "redis")
	if redis == nil || len(redis.Command) != 2 || redis.Command[0] != "redis-server" || redis.Command[1] != "/conf/redis.conf" {
		t.Fatalf("redis command %v, want [redis-server /conf/redis.conf]", redis)
	}
	ic := findContainer(b.sts.Spec.Template.Spec.InitContainers, "agent-init")
	if ic == nil {
		t.Fatalf("no agent-init")
	}
	conf := redisConf(mountedConfigMap(t, b, redis, "/conf").Data["redis.conf"])
	args := ic.Command
	if n := len(args); n < 2 || args[n-2] != "--nodes-conf" || args[n-1] != conf["cluster-config-file"] {
		t.Errorf("agent-init command %v does not end with --nodes-conf %s (the seed's cluster-config-file)", args, conf["cluster-config-file"])
	}
}
