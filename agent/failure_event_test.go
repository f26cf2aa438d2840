package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/proctest"
)

func TestFailureEventNoteIsCappedAtTheAPILimit(t *testing.T) {
	cfg := config.Config{Identity: config.Identity{PodName: "redis-1", Namespace: "ns"}}
	long := errors.New(strings.Repeat("x", 3000))
	ev := failureEvent(cfg, "InitFailed", "Init", long, time.Unix(1, 0))
	if len(ev.Note) != maxEventNote || !strings.HasSuffix(ev.Note, "...") {
		t.Errorf("note of a 3000-byte error: %d bytes, suffix %q; want %d ending in ...", len(ev.Note), ev.Note[len(ev.Note)-3:], maxEventNote)
	}
	if ev.Regarding.Name != "redis-1" || ev.Regarding.Namespace != "ns" || ev.Type != "Warning" || ev.Reason != "InitFailed" {
		t.Errorf("event %+v: want a Warning InitFailed regarding pod ns/redis-1", ev)
	}
}

// TestInitFailurePublishedAsEvent: a failing init leaves a Warning Event on
// its pod, in a real API server, carrying the error.
func TestInitFailurePublishedAsEvent(t *testing.T) {
	rc, _ := proctest.StartAPIServer(t)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["t"] = &clientcmdapi.Cluster{Server: rc.Host, InsecureSkipTLSVerify: true}
	kc.AuthInfos["t"] = &clientcmdapi.AuthInfo{Token: rc.BearerToken}
	kc.Contexts["t"] = &clientcmdapi.Context{Cluster: "t", AuthInfo: "t"}
	kc.CurrentContext = "t"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-password")
	cfg := config.Config{Mode: config.ModeCluster, Identity: config.Identity{PodName: "redis-3", Namespace: "default"}, Kubeconfig: path, PasswordFile: missing,
		RedisConfInclude: filepath.Join(dir, "include.conf"), NodesConf: filepath.Join(dir, "nodes.conf")}
	err := Init(context.Background(), cfg, zerolog.New(os.Stderr), InitEnv{})
	if err == nil {
		t.Fatalf("init with a missing password file %s succeeded", missing)
	}
	kube, err2 := kubernetes.NewForConfig(rc)
	if err2 != nil {
		t.Fatal(err2)
	}
	evs, err2 := kube.EventsV1().Events("default").List(context.Background(), metav1.ListOptions{})
	if err2 != nil {
		t.Fatal(err2)
	}
	for _, ev := range evs.Items {
		if ev.Reason == "InitFailed" && ev.Regarding.Name == "redis-3" {
			if ev.Note != err.Error() || !strings.Contains(ev.Note, missing) {
				t.Errorf("InitFailed note %q; want the init error %q naming %s", ev.Note, err, missing)
			}
			return
		}
	}
	t.Errorf("no InitFailed Event on pod redis-3 after init failed with %q; events: %+v", err, evs.Items)
}
