package localkube

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"testing"
)

// BaselinesEnv turns on the baselines: the seeds' own setups, run beside
// ours to report a figure. They assert nothing about redis-ha-agent, so CI
// leaves them out to stay within its time budget; `make e2e-long` sets it.
const BaselinesEnv = "E2E_BASELINES"

var baselinesNotRun struct {
	sync.Mutex
	list []string
}

// NeedBaselines stops a baseline test unless E2E_BASELINES=1. The test is
// named at the end of the package's output (printed by RunTests), so a
// left-out baseline is never silent.
func NeedBaselines(t testing.TB) {
	t.Helper()
	if os.Getenv(BaselinesEnv) == "1" {
		return
	}
	baselinesNotRun.Lock()
	baselinesNotRun.list = append(baselinesNotRun.list, t.Name())
	baselinesNotRun.Unlock()
	t.Skipf("baseline (reports a figure, asserts nothing about the agent): %s=1 runs it, as make e2e-long does", BaselinesEnv)
}

func printBaselinesNotRun(w io.Writer) {
	baselinesNotRun.Lock()
	defer baselinesNotRun.Unlock()
	if len(baselinesNotRun.list) == 0 {
		return
	}
	sort.Strings(baselinesNotRun.list)
	fmt.Fprintf(w, "localkube: %d baselines NOT RUN (%s=1, as make e2e-long sets, runs them):\n", len(baselinesNotRun.list), BaselinesEnv)
	for _, s := range baselinesNotRun.list {
		fmt.Fprintf(w, "  %s\n", s)
	}
}
