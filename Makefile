# cognito-extauthz. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
# VERSION is the release tag (v1.2.3, or v1.2.3-4-gabcdef0 past it), or
# "dev" when the checkout has no tag; COMMIT is always the commit. They used
# to be the same hash twice on an untagged checkout.
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# One set of build flags for build, run and image: the compile cache is keyed
# on -trimpath and the cgo setting (the -X values only touch the link step),
# so `make build` after `make run` only relinks. The Dockerfile runs `make
# build`; .goreleaser.yaml repeats these flags (GoReleaser cannot read them
# from here) and `make release-check` fails when its binaries' build
# settings (`go version -m`) differ from those of `make build`.
export CGO_ENABLED = 0
BUILDFLAGS := -trimpath -ldflags '$(LDFLAGS)'
IMAGE ?= ghcr.io/cognito-extauthz/extauthz
BIN := bin/extauthz
HELM := tools/bin/helm
, := ,
# progress lines for the long targets, on stderr
say = @printf '==> %s (%s)\n' "$(1)" "$$(date +%H:%M:%S)" >&2
E2E_NODE := e2e/node_modules/.bin/cognito-local
# vtprotobuf compiles in the fast marshalling code go-control-plane ships
# for its messages (used by the gRPC server's codec); without the tag the
# standard marshaller is used and the bytes on the wire are the same.
export GOFLAGS := $(GOFLAGS) -tags=vtprotobuf

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/extauthz (static, CGO_ENABLED=0)
	$(call say,go build $(BIN) -- the first build compiles every dependency: about 1-2 min on 2 cores)
	$(GO) build $(BUILDFLAGS) -o $(BIN) ./cmd/extauthz

.PHONY: run
run: build ## build bin/extauthz, then run the zero-setup demo (embedded policy + local issuer) on 127.0.0.1:9001/9002
	$(call say,$(BIN) dev)
	exec $(BIN) dev

# gotestsum (pinned in go.mod) runs go test -json and prints what go test
# would (one line per package), then every skipped test with its reason (an
# end-to-end test skips when nginx, Caddy, node or cognito-local is missing,
# outside CI), the failures in full and a count; its exit status is go
# test's.
.PHONY: test
test: e2e-deps $(HELM) ## run every test (unit, integration, end-to-end against cognito-local, the Helm chart, the mesh examples) with the race detector; lists the skipped tests and why
	$(call say,go test -race ./... -- compiles with the race detector (needs gcc) and prints one line per package as it finishes$(,) then the skipped tests and the failures)
	CGO_ENABLED=1 $(GO) tool gotestsum --format standard-quiet --raw-command -- $(GO) test -json -race -count=1 -timeout=30m ./...
	$(call say,go test -race in deploy/test -- the Istio$(,) Gateway API$(,) Envoy Gateway and Contour examples against their own Go types)
	cd deploy/test && CGO_ENABLED=1 $(GO) test -race -count=1 -timeout=10m ./...

.PHONY: test-short
test-short: ## unit and integration tests only, no race detector
	$(GO) test -short ./...

.PHONY: e2e-deps
e2e-deps: $(E2E_NODE) ## install the Cognito emulator (cognito-local) for the end-to-end tests

$(E2E_NODE): e2e/package.json e2e/package-lock.json
	$(call say,npm ci in e2e/ (cognito-local))
	cd e2e && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: e2e
e2e: e2e-deps ## run only the end-to-end tests
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout=30m -v ./e2e/...

.PHONY: bench
bench: ## in-process benchmarks of the hot path (see BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./internal/grpcauthz/ ./internal/httpauthz/ ./pkg/token/ ./pkg/policy/ ./internal/tokencache/ ./pkg/jwks/ ./internal/rsapkcs1/

.PHONY: bench-load
bench-load: build ## load benchmark: extauthz vs a no-op ext_authz server, same gRPC client (see BENCHMARKS.md)
	$(GO) build -o bin/bench-load ./cmd/bench-load
	./bin/bench-load --extauthz $(BIN) $(BENCH_LOAD_FLAGS)

.PHONY: load
load: ## load benchmark: ghz against a running `extauthz dev` (see BENCHMARKS.md)
	./scripts/load.sh

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	./scripts/fuzz.sh $(or $(FUZZTIME),20s)

# Mutation testing is CPU-heavy: one package at a time, niced. gremlins
# times each mutant against its coverage run, so that run is forced past the
# test cache (-count=1): a cached one takes well under a second, and every
# mutant then "times out". MUTATE_TIMEOUT multiplies that measured time.
MUTATE_PKGS ?= ./pkg/token ./internal/authz ./pkg/policy ./internal/grpcauthz ./internal/rsapkcs1
MUTATE_WORKERS ?= 1
MUTATE_THRESHOLD ?= 90
MUTATE_TIMEOUT ?= 6

.PHONY: mutate
mutate: ## mutation testing with gremlins (pinned in go.mod), per package; MUTATE_PKGS, MUTATE_WORKERS, MUTATE_THRESHOLD, MUTATE_TIMEOUT
	@set -e; for p in $(MUTATE_PKGS); do \
		echo "== $$p"; \
		GOFLAGS="$(GOFLAGS) -count=1" nice -n 19 $(GO) tool gremlins unleash --workers $(MUTATE_WORKERS) \
			--timeout-coefficient $(MUTATE_TIMEOUT) --threshold-efficacy $(MUTATE_THRESHOLD) $(MUTATE_FLAGS) $$p; \
	done

.PHONY: lint
lint: proto-check ## gofmt, go vet, staticcheck (pinned in go.mod), and generated code up to date
	$(call say,gofmt and go vet)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@echo "staticcheck (the first run builds it and takes a few minutes)"
	$(GO) tool staticcheck ./...

.PHONY: fmt
fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

.PHONY: proto
proto: ## regenerate Go code from proto/ (buf + protoc-gen-go, offline, pinned in go.mod)
	$(call say,go tool buf -- the first call compiles buf: several minutes on 2 cores)
	cd proto && $(GO) tool buf lint && $(GO) tool buf generate

.PHONY: proto-check
proto-check: proto ## fail when the checked-in generated code is stale
	git diff --exit-code -- proto/

.PHONY: image
image: ## build the container image for this machine (docker with BuildKit, the default since Docker 23)
	DOCKER_BUILDKIT=1 docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE):$(VERSION) .

PLATFORMS ?= linux/amd64,linux/arm64
.PHONY: image-push
image-push: ## build the multi-arch image and push it: make image-push IMAGE=registry.example.com/you/extauthz
	docker buildx build --platform $(PLATFORMS) --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) \
	  -t $(IMAGE):$(VERSION) --push .
	@echo "pushed $(IMAGE):$(VERSION); point the overlays at it: see k8s/README.md"

# Release tooling lives in its own module, tools/go.mod (goreleaser, syft,
# actionlint), so that `go mod download` of the service stays small.
TOOLS := tools/bin/goreleaser tools/bin/syft tools/bin/actionlint
.PHONY: tools
tools: $(TOOLS) ## build the pinned release tools into tools/bin (first time: several minutes)
$(TOOLS) &: tools/go.mod tools/go.sum
	$(call say,building goreleaser syft actionlint from tools/go.mod -- large: 5-15 min the first time on 2 cores)
	cd tools && $(GO) build -trimpath -o bin/ github.com/goreleaser/goreleaser/v2 github.com/anchore/syft/cmd/syft github.com/rhysd/actionlint/cmd/actionlint
	@touch $(TOOLS)

# helm renders and lints the chart in `make test` (k8s/chart_test.go); it
# is pinned in tools/go.mod with the release tools but built on its own.
$(HELM): tools/go.mod tools/go.sum
	$(call say,building helm from tools/go.mod -- about 3 min of 2 cores the first time$(,) more on a busy machine)
	cd tools && $(GO) build -trimpath -o bin/ helm.sh/helm/v4/cmd/helm
	@touch $@

.PHONY: chart-files
chart-files: ## copy the shipped alerts into the Helm chart (a test fails when the copy is stale)
	cp examples/grafana/alerts.yaml deploy/helm/cognito-extauthz/files/alerts.yaml

# GoReleaser runs without this Makefile's GOFLAGS and CGO_ENABLED, as in the
# release workflow, so that a flag only the Makefile sets shows as a drift.
.PHONY: release-check
release-check: tools build ## offline: actionlint the workflows, goreleaser check, snapshot build of the binaries + SBOMs into dist/, their build settings against make build's
	$(call say,actionlint)
	tools/bin/actionlint .github/workflows/*.yml
	$(call say,goreleaser check)
	PATH="$(CURDIR)/tools/bin:$$PATH" goreleaser check
	$(call say,goreleaser release --snapshot --skip=publish$(,)docker)
	env -u GOFLAGS -u CGO_ENABLED PATH="$(CURDIR)/tools/bin:$$PATH" goreleaser release --snapshot --skip=publish,docker --clean
	GO=$(GO) ./scripts/check-dist.sh dist $(BIN)

.PHONY: clean
clean: ## remove build outputs
	rm -rf bin dist tools/bin
