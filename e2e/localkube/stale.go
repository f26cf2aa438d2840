package localkube

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// runsDir holds one record per live run. /run is a tmpfs, so a reboot clears
// records together with the network namespaces they describe.
const runsDir = "/run/localkube"

// runRecord says which process owns a run id and where its state lives, so a
// later Up can tell a crashed run from a live one.
type runRecord struct {
	RunID    string `json:"runID"`
	PID      int    `json:"pid"`
	PIDStart uint64 `json:"pidStart"` // start time in clock ticks; guards against pid reuse
	StateDir string `json:"stateDir"`
}

func recordPath(runID string) string { return filepath.Join(runsDir, "lk-"+runID+".json") }

func writeRunRecord(runID, stateDir string) error {
	start, err := processStart(os.Getpid())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(runsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", runsDir, err)
	}
	b, _ := json.Marshal(runRecord{RunID: runID, PID: os.Getpid(), PIDStart: start, StateDir: stateDir})
	return os.WriteFile(recordPath(runID), b, 0o644)
}

// processStart reads field 22 of /proc/<pid>/stat (start time since boot).
func processStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields after it are
	// counted from the closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

func (r runRecord) alive() bool {
	start, err := processStart(r.PID)
	return err == nil && start == r.PIDStart
}

func readRunRecord(runID string) (runRecord, bool) {
	b, err := os.ReadFile(recordPath(runID))
	if err != nil {
		return runRecord{}, false
	}
	var r runRecord
	if json.Unmarshal(b, &r) != nil {
		return runRecord{}, false
	}
	return r, true
}

// liveRunFor returns the live run that uses stateDir, if any.
func liveRunFor(stateDir string) (runRecord, bool) {
	entries, _ := os.ReadDir(runsDir)
	for _, e := range entries {
		id, ok := strings.CutPrefix(strings.TrimSuffix(e.Name(), ".json"), "lk-")
		if !ok {
			continue
		}
		if r, ok := readRunRecord(id); ok && r.StateDir == stateDir && r.alive() {
			return r, true
		}
	}
	return runRecord{}, false
}

// cleanupStale removes what runs whose owner died left behind: processes in
// their network namespaces, the namespaces, mounts under their state
// directory and the run record. Live runs are never touched.
func cleanupStale(ctx context.Context, log zerolog.Logger) error {
	ids := map[string]bool{}
	if entries, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range entries {
			if id, ok := runIDOf(e.Name()); ok {
				ids[id] = true
			}
		}
	}
	if entries, err := os.ReadDir(runsDir); err == nil {
		for _, e := range entries {
			if id, ok := strings.CutPrefix(strings.TrimSuffix(e.Name(), ".json"), "lk-"); ok {
				ids[id] = true
			}
		}
	}
	var errs []error
	if err := removeOrphanCNINetns(ctx, log); err != nil {
		errs = append(errs, err)
	}
	for id := range ids {
		rec, ok := readRunRecord(id)
		if ok && rec.alive() {
			continue
		}
		log.Info().Str("run", id).Msg("removing leftovers of a dead run")
		if err := removeRun(ctx, id, rec.StateDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runIDOf extracts the run id from a netns name lk-<id>-<suffix>.
func runIDOf(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "lk-")
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "-")
	return id, ok && id != ""
}

// removeRun kills every process in the run's namespaces, deletes them,
// unmounts anything left under stateDir and drops the record.
func removeRun(ctx context.Context, runID, stateDir string) error {
	var errs []error
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		if id, ok := runIDOf(e.Name()); !ok || id != runID {
			continue
		}
		ns := namespace{name: e.Name()}
		if out, err := output(ctx, "ip", "netns", "pids", ns.name); err == nil {
			for _, f := range strings.Fields(out) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if err := ns.delete(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if stateDir != "" {
		// The runc shims outlive a killed containerd, so their containers
		// are stopped here, through runc's own state.
		thawRun(runID)
		nodes, _ := filepath.Glob(filepath.Join(nodeDir(stateDir, "*"), "runc"))
		for _, root := range nodes {
			if err := killRuncContainers(ctx, root); err != nil {
				errs = append(errs, err)
			}
			killShims(filepath.Dir(root))
		}
		if err := unmountUnder(stateDir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeCgroups(runID); err != nil {
		errs = append(errs, err)
	}
	if err := os.Remove(recordPath(runID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount below dir, deepest first, so removing a
// stale state directory can never reach through a bind mount into data that
// belongs somewhere else.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4]+"/", prefix) {
			points = append(points, unescapeMount(fields[4]))
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount decodes the octal escapes mountinfo uses for spaces etc.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeOrphanCNINetns deletes pod network namespaces (cni-*, made by
// containerd's CNI plugin) that a dead run left: their veth went with the
// run's cluster netns, so only loopback is left. A sandbox being set up
// right now has no veth yet either, hence the age check.
func removeOrphanCNINetns(ctx context.Context, log zerolog.Logger) error {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return nil
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "cni-") {
			continue
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < 2*time.Minute {
			continue
		}
		out, err := output(ctx, "ip", "-n", e.Name(), "-o", "link", "show")
		if err != nil {
			continue
		}
		links := strings.Count(strings.TrimSpace(out), "\n") + 1
		if links != 1 || !strings.Contains(out, ": lo:") {
			continue
		}
		log.Info().Str("netns", e.Name()).Msg("removing a pod network namespace a dead run left")
		if err := run(ctx, "ip", "netns", "delete", e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// thawRun thaws every node cgroup tree of a run (see thawAll).
func thawRun(runID string) {
	entries, _ := os.ReadDir("/sys/fs/cgroup/freezer")
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "localkube-"+runID+"-") {
			thawAll("/" + e.Name())
		}
	}
}
