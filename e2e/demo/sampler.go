package demo

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/redis/go-redis/v9"
)

// PodSample is one pod at one instant: Kubernetes' view and its Redis role.
type PodSample struct {
	Label string // the role label
	Ready bool
	IP    string
	Role  string // INFO replication role; "" when redis-server did not answer
	// SentinelMaster is the pod this pod's Sentinel names master (sentinel
	// mode; "" when it did not answer).
	SentinelMaster string
	// At is when the answers came (zero: the sample's time); a pod that
	// was frozen answers late, and the timeline must say when.
	At time.Time
}

// Sample is every pod of the StatefulSet at one instant.
type Sample struct {
	At   time.Time
	Pods map[string]PodSample
}

// Sampler records the StatefulSet's pods about every 100 ms during a fault,
// so the timeline (when Redis promoted, when the label moved, when the old
// pod came back) is read from observations, not from logs.
type Sampler struct {
	Env       Env
	Namespace string
	STS       string
	Interval  time.Duration
	// Sentinels also asks each pod's Sentinel which pod is master.
	Sentinels bool

	mu      sync.Mutex
	samples []Sample
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	if s.Interval <= 0 {
		s.Interval = 100 * time.Millisecond
	}
	clients := map[string]*redis.Client{} // by address
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	for {
		s.sample(ctx, clients)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Sampler) sample(ctx context.Context, clients map[string]*redis.Client) {
	pods, err := s.Env.podsOf(ctx, s.Namespace, s.STS)
	if err != nil {
		return // an API hiccup is a gap in the record, not a failure
	}
	at := time.Now()
	out := Sample{At: at, Pods: map[string]PodSample{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range pods {
		p := &pods[i]
		ps := PodSample{Label: p.Labels[RoleLabel], Ready: podReady(p), IP: p.Status.PodIP}
		if ps.IP == "" {
			out.Pods[p.Name] = ps
			continue
		}
		client := func(addr string) *redis.Client {
			c := clients[addr]
			if c == nil {
				c = s.Env.newClient(addr)
				clients[addr] = c
			}
			return c
		}
		c := client(redisAddr(p))
		var sc *redis.Client
		if s.Sentinels {
			sc = client(net.JoinHostPort(ps.IP, "26379"))
		}
		wg.Add(1)
		go func(name string, ps PodSample) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			if r, err := s.Env.replicationOf(cctx, c); err == nil {
				ps.Role = r.Role
			}
			if sc != nil {
				if addr, err := sc.Do(cctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName).StringSlice(); err == nil && len(addr) > 0 {
					ps.SentinelMaster = podOfHost(addr[0], pods)
				}
			}
			ps.At = time.Now()
			mu.Lock()
			out.Pods[name] = ps
			mu.Unlock()
		}(p.Name, ps)
	}
	wg.Wait()
	s.mu.Lock()
	s.samples = append(s.samples, out)
	s.mu.Unlock()
}

// Samples returns what was recorded so far.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}

// FirstWhere returns the first sample at or after t0 for which pred holds
// of some pod, and that pod's name. Pure.
func FirstWhere(samples []Sample, t0 time.Time, pred func(pod string, ps PodSample) bool) (time.Time, string) {
	for _, s := range samples {
		if s.At.Before(t0) {
			continue
		}
		for name, ps := range s.Pods {
			if pred(name, ps) {
				if !ps.At.IsZero() {
					return ps.At, name
				}
				return s.At, name
			}
		}
	}
	return time.Time{}, ""
}

// MaxLabelledMasters is the largest number of Ready pods carrying the
// master label in any one sample: more than one means the master Service
// could send writes to two pods. Pure.
func MaxLabelledMasters(samples []Sample) int {
	m := 0
	for _, s := range samples {
		n := 0
		for _, ps := range s.Pods {
			if ps.Label == "master" && ps.Ready {
				n++
			}
		}
		m = max(m, n)
	}
	return m
}

// Timeline is what the samples show about one fault on pod old.
type Timeline struct {
	Down       time.Time // old's redis-server first did not answer
	Back       time.Time // ... and first answered again
	BackRole   string
	Promoted   string // a pod that was not master before the fault and became one
	PromotedAt time.Time
	Labelled   string // a pod not labelled master before the fault that became labelled master and Ready
	LabelledAt time.Time
	// Majority is a pod other than the pre-fault master that a majority of
	// all pods' Sentinels name master (Sentinel's +switch-master, as the
	// agents see it).
	Majority   string
	MajorityAt time.Time
}

// ReadTimeline reads a Timeline from samples. Pure.
func ReadTimeline(samples []Sample, t0 time.Time, old string) Timeline {
	var tl Timeline
	before := Sample{Pods: map[string]PodSample{}}
	for _, s := range samples {
		if !s.At.Before(t0) {
			break
		}
		before = s
	}
	tl.Down, _ = FirstWhere(samples, t0, func(pod string, ps PodSample) bool { return pod == old && ps.Role == "" })
	if !tl.Down.IsZero() {
		for _, s := range samples {
			if ps, ok := s.Pods[old]; ok && s.At.After(tl.Down) && ps.Role != "" {
				tl.Back, tl.BackRole = s.At, ps.Role
				if !ps.At.IsZero() {
					tl.Back = ps.At
				}
				break
			}
		}
	}
	tl.PromotedAt, tl.Promoted = FirstWhere(samples, t0, func(pod string, ps PodSample) bool {
		return pod != old && ps.Role == "master" && before.Pods[pod].Role != "master"
	})
	for _, s := range samples {
		if s.At.Before(t0) || len(s.Pods) == 0 {
			continue
		}
		votes := map[string]int{}
		for _, ps := range s.Pods {
			if ps.SentinelMaster != "" {
				votes[ps.SentinelMaster]++
			}
		}
		for pod, n := range votes {
			if pod != old && before.Pods[pod].Role != "master" && n > len(s.Pods)/2 {
				tl.Majority, tl.MajorityAt = pod, s.At
			}
		}
		if tl.Majority != "" {
			break
		}
	}
	tl.LabelledAt, tl.Labelled = FirstWhere(samples, t0, func(pod string, ps PodSample) bool {
		return pod != old && ps.Label == "master" && ps.Ready && before.Pods[pod].Label != "master"
	})
	return tl
}

// podOfHost maps what Sentinel reports (a pod DNS name or an IP) to a pod.
func podOfHost(host string, pods []corev1.Pod) string {
	for _, p := range pods {
		if host == p.Status.PodIP || strings.HasPrefix(host, p.Name+".") {
			return p.Name
		}
	}
	return host
}

// unreadyWhileLabelled finds the first stretch after since in which pod
// carried the master label but was not Ready: the master Service then has
// no endpoint, which a client sees as a write gap. Pure.
func unreadyWhileLabelled(samples []Sample, since time.Time, pod string) (from, to time.Time) {
	if since.IsZero() {
		return
	}
	for _, s := range samples {
		if s.At.Before(since) {
			continue
		}
		ps, ok := s.Pods[pod]
		if !ok {
			continue
		}
		switch {
		case from.IsZero() && ps.Label == "master" && !ps.Ready:
			from = s.At
		case !from.IsZero() && ps.Ready:
			return from, s.At
		}
	}
	return from, to
}
