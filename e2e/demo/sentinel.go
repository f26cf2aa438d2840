package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Sentinel is the sentinel-mode part of the demo: 3 pods from
// manifests/overlays/sentinel-3, one planned switchover, one crash.
type Sentinel struct {
	Env       Env
	P         *Printer
	Namespace string
	STS       string
	Pods      int
	SeedKeys  int

	master string
	// healthy: the last step left 1 master + N-1 replicas, so the next one
	// can run even if that step's own checks failed.
	healthy bool
}

func (s *Sentinel) overlay() string {
	return filepath.Join(s.Env.RepoRoot, "manifests", "overlays", "sentinel-3")
}

func (s *Sentinel) masterService() string {
	return fmt.Sprintf("%s-master.%s.svc.cluster.local:6379", s.STS, s.Namespace)
}

func (s *Sentinel) seedKey(i int) string { return fmt.Sprintf("demo:seed:%04d", i) }

// Deploy applies the overlay, waits for 1 master + N-1 replicas, shows the
// status table and the agents' decisions, and writes the seed keys through
// the master Service.
func (s *Sentinel) Deploy(ctx context.Context) error {
	p := s.P
	start := time.Now()
	err := s.Env.Deploy(ctx, s.Namespace, s.overlay())
	if err := p.Check(fmt.Sprintf("kubectl apply -n %s -k manifests/overlays/sentinel-3", s.Namespace), time.Since(start), err); err != nil {
		return err
	}
	m, err := s.Env.WaitSentinel(ctx, s.Namespace, s.STS, s.Pods, 4*time.Minute)
	if err := p.Check(fmt.Sprintf("%d pods Ready: %s is master, %d replicas follow it", s.Pods, m, s.Pods-1), time.Since(start), err); err != nil {
		p.Info("%s", s.Env.logHint(s.Namespace))
		return err
	}
	s.master, s.healthy = m, true
	p.Record("sentinel mode: deploy → 1 master + 2 replicas Ready", time.Since(start), "")
	if err := s.showStatus(ctx); err != nil {
		return err
	}
	s.showEvents(ctx, time.Time{}, "Promoted", "LeaseAcquired")

	t := time.Now()
	c := s.Env.newClient(s.masterService())
	defer c.Close()
	err = poll(ctx, "writes through the master Service", 30*time.Second, 250*time.Millisecond, func(ctx context.Context) error {
		_, err := c.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i := 0; i < s.SeedKeys; i++ {
				pl.Set(ctx, s.seedKey(i), "seed", 0)
			}
			return nil
		})
		return err
	})
	return p.Check(fmt.Sprintf("wrote %d keys through Service %s-master", s.SeedKeys, s.STS), time.Since(t), err)
}

func (s *Sentinel) showStatus(ctx context.Context) error {
	out, err := s.Env.StatusTable(ctx, s.Namespace, s.STS)
	if err != nil {
		s.P.Fail("redis-ha-agent status", err)
		return err
	}
	s.P.Info("$ redis-ha-agent status --namespace %s --statefulset %s", s.Namespace, s.STS)
	s.P.Block(out)
	return nil
}

// showEvents prints the agents' Events since t with one of reasons (all
// when none given), as "pod Reason: note".
func (s *Sentinel) showEvents(ctx context.Context, since time.Time, reasons ...string) []AgentEvent {
	return showEvents(ctx, s.Env, s.P, s.Namespace, since, reasons...)
}

func showEvents(ctx context.Context, e Env, p *Printer, ns string, since time.Time, reasons ...string) []AgentEvent {
	evs, err := e.AgentEvents(ctx, ns)
	if err != nil {
		p.Info("(events: %v)", err)
		return nil
	}
	var shown []AgentEvent
	for _, ev := range evs {
		if !since.IsZero() && ev.Time.Time.Before(since.Add(-time.Second)) {
			continue
		}
		if len(reasons) > 0 && !contains(reasons, ev.Reason) {
			continue
		}
		shown = append(shown, ev)
		p.Info("event %-19s %-9s %s", ev.Reason, ev.Object, ev.Note)
	}
	return shown
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Switchover deletes the master pod the way `kubectl delete pod` does: its
// preStop hook asks the agent to hand the role over before Redis stops.
func (s *Sentinel) Switchover(ctx context.Context) error {
	old := s.master
	s.P.Info("$ kubectl delete pod %s   # the master; a writer sends SET + WAIT 1 every 20ms through Service %s-master", old, s.STS)
	run, err := s.fault(ctx, "demo:switchover", old, true, func(ctx context.Context) error {
		return s.Env.Kube.CoreV1().Pods(s.Namespace).Delete(ctx, old, metav1.DeleteOptions{})
	})
	return s.report(ctx, run, err, old, true)
}

// Crash SIGKILLs every process of the master pod: no preStop. The kubelet
// restarts the containers at once, so whether Sentinel fails over (down-after
// 5s) depends on how fast redis-server is back; the checks are the same
// either way: one master, every replica following it, no acknowledged write
// lost.
func (s *Sentinel) Crash(ctx context.Context) error {
	old := s.master
	s.P.Info("$ (cd e2e && go run ./cmd/localkube -n %s kill-pod %s)   # SIGKILL redis, sentinel and agent of the master", s.Namespace, old)
	run, err := s.fault(ctx, "demo:crash", old, false, func(ctx context.Context) error {
		return s.Env.KillPod(ctx, s.Namespace, old)
	})
	return s.report(ctx, run, err, old, false)
}

func (s *Sentinel) fault(ctx context.Context, prefix, old string, planned bool, inject func(context.Context) error) (FaultRun, error) {
	client := redis.NewClient(&redis.Options{Addr: s.masterService(), Dialer: s.Env.Dial, MaxRetries: -1,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
	defer client.Close()
	spec := faultSpec{
		Env: s.Env, Namespace: s.Namespace, STS: s.STS, Client: client, Prefix: prefix, Inject: inject, Timeout: 3 * time.Minute, Sentinels: true,
		StableFor: 3 * time.Second,
		Healthy: func(ctx context.Context) error {
			m, err := s.Env.sentinelHealthy(ctx, s.Namespace, s.STS, s.Pods)
			if err == nil {
				s.master = m
			}
			return err
		},
	}
	if planned {
		spec.Moved = func(ctx context.Context) error {
			pods, err := s.Env.podsOf(ctx, s.Namespace, s.STS)
			if err != nil {
				return err
			}
			for i := range pods {
				if pods[i].Name != old && pods[i].Labels[RoleLabel] == "master" && podReady(&pods[i]) {
					return nil
				}
			}
			return fmt.Errorf("no pod other than %s is labelled master and Ready", old)
		}
	} else {
		// Long enough for Sentinel's down-after (5s) and a failover to show.
		spec.StableFor = 12 * time.Second
	}
	return runFault(ctx, spec, func() redis.UniversalClient { return s.Env.newClient(s.masterService()) })
}

// report prints the timeline of a fault and checks its outcome.
func (s *Sentinel) report(ctx context.Context, run FaultRun, err error, old string, planned bool) error {
	p := s.P
	s.healthy = err == nil
	if err != nil {
		p.Fail(map[bool]string{true: "switchover", false: "crash"}[planned], err)
		p.Info("%s", s.Env.logHint(s.Namespace))
		return err
	}
	t0 := run.T0
	tl := ReadTimeline(run.Samples, t0, old)
	r := run.Result
	p.Info("timeline (from the fault):")
	tle := entries{t0: t0}
	if planned {
		tle.add(t0, fmt.Sprintf("pod %s deleted; its preStop hook asks the agent to hand the master role over", old))
	} else {
		tle.add(t0, fmt.Sprintf("every process of %s SIGKILLed", old))
	}
	if r.Errors > 0 {
		tle.add(r.FirstError, "first write error seen by the client")
	}
	tle.add(tl.Down, fmt.Sprintf("redis-server on %s stops answering", old))
	tle.add(tl.Back, fmt.Sprintf("redis-server on %s answers again (role:%s)", old, tl.BackRole))
	tle.add(tl.PromotedAt, fmt.Sprintf("redis-server on %s answers role:master", tl.Promoted))
	tle.add(tl.MajorityAt, fmt.Sprintf("a majority of Sentinels names %s master (+switch-master)", tl.Majority))
	tle.add(tl.LabelledAt, fmt.Sprintf("%s labelled master and Ready: Service %s-master sends writes there", tl.Labelled, s.STS))
	if r.LongestGap > 100*time.Millisecond {
		tle.add(r.GapTo, fmt.Sprintf("end of the longest stretch without an acknowledged write (%s, from %s)", fmtDur(r.LongestGap), at(r.GapFrom, t0)))
	}
	if from, to := unreadyWhileLabelled(run.Samples, tl.LabelledAt, tl.Labelled); !from.IsZero() {
		tle.add(from, fmt.Sprintf("%s labelled master but not Ready (readiness probe): the Service has no endpoint", tl.Labelled))
		tle.add(to, fmt.Sprintf("%s Ready again", tl.Labelled))
	}
	tle.add(run.Recovered, fmt.Sprintf("all %d pods Ready, %s is master, the others replicate from it, every Sentinel agrees", s.Pods, s.master))
	tle.print(p)
	s.showEvents(ctx, t0, "SwitchoverStarted", "SwitchoverCompleted", "SwitchoverFailed", "SwitchoverSkipped", "FailoverRequested", "Promoted", "Demoted", "LeaseAcquired", "LeaseReleased", "Fenced", "Unfenced")

	var failed error
	check := func(what string, took time.Duration, err error) {
		if p.Check(what, took, err) != nil && failed == nil {
			failed = err
		}
	}
	if planned {
		var moveErr error
		if tl.Labelled == "" {
			moveErr = fmt.Errorf("no other pod was labelled master after the delete")
		}
		check(fmt.Sprintf("master moved %s → %s", old, nonEmpty(tl.Labelled)), tl.LabelledAt.Sub(t0), moveErr)
	} else if tl.Promoted == "" {
		p.Info("no failover: %s was back before Sentinel's down-after (5s) and kept the master role", old)
	}
	var labelLag *time.Duration
	if labelledAt, _ := FirstWhere(run.Samples, t0, func(pod string, ps PodSample) bool {
		return pod == tl.Majority && ps.Label == "master"
	}); tl.Majority != "" && !labelledAt.IsZero() {
		// DESIGN.md: the label moves within a second of +switch-master
		// (the agent may label earlier, on its own evidence). A target,
		// not a check: speed is a figure (make bench), and on real nodes a
		// pass that also reads its peers can take longer. The samples are
		// ~100 ms apart.
		lag := max(labelledAt.Sub(tl.MajorityAt), 0)
		if labelledAt.Before(tl.MajorityAt) {
			p.OK("role label was on the new master before a Sentinel majority named it", 0)
		} else {
			met := "met"
			if lag > time.Second {
				met = "missed"
			}
			p.Info("role label moved %s after a Sentinel majority named %s master (target within 1s: %s)", fmtDur(lag), tl.Majority, met)
		}
		labelLag = &lag
	}
	gapBase := "plain Sentinel, SIGKILL, down-after 5s: 6.26s"
	if planned {
		gapBase = "plain SENTINEL FAILOVER recipe: 11.2s"
	}
	p.Info("writes: %d attempted, %d acknowledged by a replica (WAIT 1), %d errors, %d OK without a replica ack", r.Attempts, r.Acked, r.Errors, r.Wait0)
	var gapErr error
	if planned && r.LongestGap >= 11200*time.Millisecond {
		gapErr = fmt.Errorf("write gap %s is no better than the plain recipe (11.2s)", fmtDur(r.LongestGap))
	}
	check(fmt.Sprintf("longest write gap (%s)", gapBase), r.LongestGap, gapErr)
	var lostErr error
	if r.AckedLost > 0 {
		lostErr = fmt.Errorf("%d acknowledged writes missing, e.g. %s", r.AckedLost, strings.Join(r.LostKeys, ", "))
	}
	check(fmt.Sprintf("0 of %d acknowledged writes lost", r.Acked), 0, lostErr)
	if planned {
		var okErr error
		if run.OKLost > 0 {
			okErr = fmt.Errorf("%d writes answered OK are missing", run.OKLost)
		}
		check("0 writes answered OK lost (planned: none may vanish)", 0, okErr)
	} else if run.OKLost > 0 {
		p.Info("%d writes answered OK without a replica ack vanished (asynchronous replication; WAIT 1 is the guarantee)", run.OKLost)
	}
	var twoErr error
	if n := MaxLabelledMasters(run.Samples); n > 1 {
		twoErr = fmt.Errorf("%d Ready pods carried the master label at the same time", n)
	}
	check("never two Ready pods labelled master", 0, twoErr)
	check(fmt.Sprintf("%d seed keys readable through Service %s-master", s.SeedKeys, s.STS), 0, s.checkSeedKeys(ctx))
	name := "sentinel: delete the master pod (switchover)"
	if !planned {
		name = "sentinel: SIGKILL the master pod"
	}
	p.Record(name+", write gap", r.LongestGap, gapBase)
	if tl.Labelled != "" {
		p.Record(name+", label moved", tl.LabelledAt.Sub(t0), "")
	}
	if labelLag != nil {
		p.Record(name+", label after the Sentinel majority", *labelLag, "target: within 1s")
	}
	p.Record(name+", healthy again", run.Recovered.Sub(t0), "")
	return failed
}

func (s *Sentinel) checkSeedKeys(ctx context.Context) error {
	c := s.Env.newClient(s.masterService())
	defer c.Close()
	return poll(ctx, "seed keys", 20*time.Second, 500*time.Millisecond, func(ctx context.Context) error {
		cmds, err := c.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i := 0; i < s.SeedKeys; i++ {
				pl.Get(ctx, s.seedKey(i))
			}
			return nil
		})
		if err != nil && err != redis.Nil {
			return err
		}
		missing := 0
		for _, c := range cmds {
			if c.Err() != nil {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d seed keys missing", missing, s.SeedKeys)
		}
		return nil
	})
}

func nonEmpty(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
