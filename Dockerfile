# The redis-ha-agent image: one static binary on distroless, run as non-root.
# Built by `make image` (docker build --build-arg VERSION=...). The manifests
# call the binary by the ENTRYPOINT path below; manifests/image_test.go runs
# this file's `go build` line and checks both.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Static (no cgo) so it runs on distroless/static, and reproducible
# (-trimpath, no local paths in the binary); -s -w drop debug symbols.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.Version=${VERSION}" -o /out/redis-ha-agent ./cmd/redis-ha-agent

# No shell, no package manager, CA certificates and /etc/passwd only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/redis-ha-agent /usr/local/bin/redis-ha-agent
# Numeric, so that runAsNonRoot can verify it without reading /etc/passwd.
# The StatefulSets run the pod as 999 (Redis' uid) to share the volume.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/redis-ha-agent"]
