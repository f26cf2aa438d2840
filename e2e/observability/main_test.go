package observability

import (
	"os"
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/e2e/demo"
	"github.com/redis-ha-agent/redis-ha-agent/e2e/localkube"
)

// cluster is the cluster RunTests started for this package (the TestMain
// pattern localkube.RunTests documents); env is the demo's view of it.
var (
	cluster *localkube.Cluster
	env     demo.Env
)

func TestMain(m *testing.M) {
	os.Exit(localkube.RunTests(m, localkube.Options{}, func(c *localkube.Cluster) {
		e, err := demo.FromCluster(c)
		if err != nil {
			panic(err) // RunTests tears the cluster down on the way out
		}
		cluster, env = c, e
	}))
}
