# The two entry points are `make demo` (the main job) and `make test`.
GO            ?= go
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -s -w -X main.Version=$(VERSION)
BIN           := bin/redis-ha-agent
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# A count, not a duration: a -fuzztime duration can fail with a spurious
# "context deadline exceeded" at its end (golang/go#75804, fixed in Go 1.27).
FUZZTIME      ?= 300000x
# make test (CI) fuzzes each parser 100,000 times to stay within CI's time
# budget; make fuzz alone runs FUZZTIME.
CI_FUZZTIME   ?= 100000x

.PHONY: all build deps k8s monitoring-tools monitoring images engine-roots e2e-rbac e2e-long vet lint unit chart-test fuzz e2e e2e-real bench faults faults-engines chaos test demo image image-docker clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/redis-ha-agent

deps:
	bash e2e/hack/install-deps.sh
	bash e2e/hack/install-image-deps.sh

# The Kubernetes control plane, built from upstream modules once and cached
# (~/.cache/redis-ha-agent-e2e); integration tests use its kube-apiserver.
k8s:
	bash e2e/hack/build-k8s.sh >/dev/null

# What e2e/monitoring runs: promtool, built from the Prometheus module once
# and cached beside the Kubernetes binaries, and its helper promcheck
# (compiled here into the Go build cache, so the test only links it).
monitoring-tools:
	bash e2e/hack/build-promtool.sh >/dev/null
	cd e2e/monitoring/promcheck && $(GO) build -o /dev/null .

# The container images real nodes run (agent, pause, Redis and Valkey from
# Debian root filesystems), built without a registry and cached by content;
# progress on stderr.
images: deps build
	cd e2e && $(GO) run ./cmd/images build >/dev/null

# The Redis and Valkey images' root filesystems, unpacked for the unit tests
# that run an engine the host lacks (Redis 8.0, Valkey 8.1) through chroot.
ENGINE_ROOTS  ?= $(or $(REDIS_HA_E2E_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/redis-ha-agent-e2e)/engine-roots
engine-roots: images
	cd e2e && $(GO) run ./cmd/images rootfs $(ENGINE_ROOTS) >/dev/null

# e2e/monitoring/promcheck is a module of its own (it needs k8s.io v0.37).
vet:
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...
	cd e2e/monitoring/promcheck && $(GO) vet ./...
	cd charts/test && $(GO) vet ./...

lint: vet
	$(GO) run $(STATICCHECK) ./...
	cd e2e && $(GO) run $(STATICCHECK) ./...
	cd e2e/monitoring/promcheck && $(GO) run $(STATICCHECK) ./...
	cd charts/test && $(GO) run $(STATICCHECK) ./...

# Unit and integration tests (integration tests start real redis-server and
# redis-sentinel processes on loopback), and the Helm chart's.
unit: deps k8s engine-roots chart-test
	REDIS_HA_ENGINE_ROOTS=$(ENGINE_ROOTS) $(GO) test -count=1 ./...

# charts/redis-ha-agent rendered with the Helm v4 SDK against the kustomize
# overlays, and helm lint. Its own Go module (charts/test): Helm brings
# other k8s.io versions than the e2e module's.
chart-test:
	cd charts/test && $(GO) test -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./nodesconf
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./sentinelconf

# End-to-end tests on the local Kubernetes cluster (builds it on first use).
# Every package runs on real nodes (the upstream kubelet on containerd,
# running the images e2e/images builds); `make e2e-real` runs only
# e2e/realnodes. Outside CI's time budget, in `make e2e-long`: the per-rule
# RBAC test (every verb of the Role removed in turn, about 10 minutes) and
# the baselines (the seeds' own setups run beside ours for a figure; they
# assert nothing about the agent, E2E_BASELINES=1), and scenarios another CI
# test covers (README "Development" names which). CI's output names each
# baseline it left out.
E2E_LONG      := TestRBACRuleIsNeeded|TestSeed002WithAgent|TestSeed002Baseline|TestSIGKILLMaster|TestClusterScaleOutAndInAsMaster
# E2E_FLAGS: more go test flags, e.g. E2E_FLAGS=-v for each test's time.
E2E_FLAGS     ?=
# E2E_PARALLEL: e2e packages run at once, each on its own local cluster
# (every run has its own network namespaces). The suites mostly wait on
# failovers and restarts, so two share the 2 cores well.
E2E_PARALLEL  ?= 2
e2e: deps k8s images build monitoring-tools
	cd e2e && $(GO) test -p $(E2E_PARALLEL) -count=1 -timeout 70m $(E2E_FLAGS) -skip '^($(E2E_LONG))$$' ./...

e2e-rbac: deps k8s images build
	cd e2e && $(GO) test -count=1 -timeout 30m -run '^($(E2E_LONG))$$' -v ./manifests

e2e-long: e2e-rbac
	cd e2e && E2E_BASELINES=1 $(GO) test -count=1 -timeout 30m -run '^(TestSeed002WithAgent|TestSeed002Baseline)$$' -v ./manifests
	cd e2e && $(GO) test -count=1 -timeout 30m -run '^TestSIGKILLMaster$$' -v ./sentinel
	cd e2e && E2E_BASELINES=1 $(GO) test -count=1 -timeout 30m -run '^(TestClusterFullRestart|TestClusterScaleOutAndInAsMaster)$$' -v ./cluster

# The monitoring component's checks alone (no cluster): promtool on the
# alert rules, the objects against prometheus-operator's types, the
# dashboard's series, and redis_exporter (its image from e2e/images, built
# on first use) against real redis-servers. make e2e runs them too.
monitoring: monitoring-tools
	cd e2e && $(GO) test -count=1 -v ./monitoring

e2e-real: deps k8s images build
	cd e2e && $(GO) test -p 1 -count=1 -timeout 30m -v ./realnodes

# Minute-long scenarios (switchover/failover gaps, full-restart recovery,
# bootstrap, footprint, API request rate), each beside a baseline in the same
# run; writes e2e/report/.
bench: deps build
	cd e2e/faults && BENCH=1 FAULTS=none FAULTS_REPORT_DIR=$(CURDIR)/e2e/report $(GO) test -run TestBench -v -count=1 -timeout 60m .

# The whole fault matrix (every fault, both modes; about 40 minutes): the
# tables and timelines go to e2e/report/. make test runs the quick subset.
faults: deps build
	cd e2e/faults && FAULTS=all FAULTS_REPORT_DIR=$(CURDIR)/e2e/report $(GO) test -run 'Faults' -v -count=1 -timeout 120m .

# The quick fault subset on each engine beside the bases' Redis 7.0
# (FAULTS_ENGINE: redis-8.0, valkey-8.0, valkey-8.1; images from
# e2e/images); tables to e2e/report/faults-<mode>-<engine>.md.
ENGINES       ?= redis-8.0 valkey-8.0 valkey-8.1
faults-engines: deps build
	set -e; for e in $(ENGINES); do \
	  (cd e2e/faults && FAULTS_ENGINE=$$e FAULTS=quick FAULTS_REPORT_DIR=$(CURDIR)/e2e/report $(GO) test -run 'Faults' -v -count=1 -timeout 60m .); \
	done

# A randomized fault schedule (e2e/faults/chaos_test.go) per seed and mode,
# DURATION each, judged like the matrix; a failing seed replays the same
# schedule. Schedules, timelines and tables go to e2e/report/.
SEED          ?= 1 2 3
DURATION      ?= 10m
chaos: deps build
	cd e2e/faults && CHAOS_SEEDS='$(SEED)' CHAOS_DURATION=$(DURATION) FAULTS_REPORT_DIR=$(CURDIR)/e2e/report $(GO) test -run 'Chaos' -v -count=1 -timeout 600m .

# make test: after deps, lint, the Kubernetes build, promtool, the images and the
# fuzzing run at once (the Kubernetes build leaves a core idle while it
# links, the images wait on the Debian mirror and dpkg; fuzzing counts
# executions, not time, so sharing the CPU only slows it), then the unit and
# e2e tests, whose timings the other work would disturb. Each phase prints
# when it starts, so a cold run's log shows where its time went.
PHASE          = @echo "== $$(date +%T) make $@:"
SUBMAKE        = $(MAKE) --no-print-directory
test:
	$(PHASE) deps
	@$(SUBMAKE) deps
	$(PHASE) lint, Kubernetes build, promtool, images and fuzzing at once
	@$(SUBMAKE) -j5 lint k8s monitoring-tools engine-roots fuzz FUZZTIME=$(CI_FUZZTIME)
	$(PHASE) unit
	@$(SUBMAKE) unit
	$(PHASE) e2e
	@$(SUBMAKE) e2e
	$(PHASE) done

# make demo: on a cold cache the builds take minutes with little output of
# their own (Go compiles Kubernetes quietly), so PROGRESS prints a line
# every 30 s with what is being built, for how long, and what the cold run
# measured in README took; a warm run prints none. The demo is compiled
# before it runs, so that the line stops once its own narration starts.
PROGRESS       = bash e2e/hack/progress.sh
demo:
	$(PHASE) deps
	@$(SUBMAKE) deps
	$(PHASE) Kubernetes build and images at once
	@$(PROGRESS) "Kubernetes build and images" "cold: 8.7 min of the 12.5 a first make demo took on 2 cores" $(SUBMAKE) -j2 k8s images
	$(PHASE) demo
	@$(PROGRESS) "compiling the demo" "cold: within the 3.9 min of the demo phase of that first make demo" $(GO) -C e2e build -o ../bin/demo ./cmd/demo
	cd e2e && ../bin/demo $(if $(KEEP),--keep)

# The release image without a container engine: the agent for linux/amd64
# and linux/arm64 as one OCI image layout in bin/image, tagged with the
# version the manifests name (AGENT_TAG=... for another). Push it with e.g.
# `skopeo copy --all oci:bin/image:TAG docker://REGISTRY/redis-ha-agent:TAG`.
IMAGE_DIR     ?= bin/image
image:
	rm -rf $(IMAGE_DIR)
	cd e2e && $(GO) run ./cmd/images agent --out $(CURDIR)/$(IMAGE_DIR) $(if $(AGENT_TAG),--agent-tag $(AGENT_TAG))

# The same image from the Dockerfile, where a Docker engine is available.
image-docker:
	docker build --build-arg VERSION=$(VERSION) -t redis-ha-agent:$(VERSION) .

clean:
	rm -rf bin
