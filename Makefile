# cognito-extauthz. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
IMAGE ?= ghcr.io/cognito-extauthz/extauthz
BIN := bin/extauthz
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
build: ## build bin/extauthz
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/extauthz

.PHONY: run
run: ## run the zero-setup demo (embedded policy + local issuer) on 127.0.0.1:9001/9002
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/extauthz dev

.PHONY: test
test: e2e-deps ## run every test (unit, integration, end-to-end against cognito-local) with the race detector
	$(GO) test -race -count=1 ./...

.PHONY: test-short
test-short: ## unit and integration tests only, no race detector
	$(GO) test -short ./...

.PHONY: e2e-deps
e2e-deps: $(E2E_NODE) ## install the Cognito emulator (cognito-local) for the end-to-end tests

$(E2E_NODE): e2e/package.json e2e/package-lock.json
	cd e2e && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: e2e
e2e: e2e-deps ## run only the end-to-end tests
	$(GO) test -race -count=1 -v ./e2e/...

.PHONY: bench
bench: ## in-process benchmarks of the hot path (see BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./pkg/extauthz/ ./pkg/httpauthz/ ./pkg/token/ ./pkg/policy/ ./internal/tokencache/ ./pkg/jwks/

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

# Mutation testing is CPU-heavy: one package at a time, niced, with a
# generous per-test timeout so a loaded machine does not turn slow tests into
# false "timed out" kills.
MUTATE_PKGS ?= ./pkg/token ./pkg/authz
MUTATE_WORKERS ?= 1
MUTATE_THRESHOLD ?= 90

.PHONY: mutate
mutate: ## mutation testing with gremlins (pinned in go.mod), per package; MUTATE_PKGS, MUTATE_WORKERS, MUTATE_THRESHOLD
	@set -e; for p in $(MUTATE_PKGS); do \
		echo "== $$p"; \
		nice -n 10 $(GO) tool gremlins unleash --workers $(MUTATE_WORKERS) --timeout-coefficient 30 \
			--threshold-efficacy $(MUTATE_THRESHOLD) $(MUTATE_FLAGS) $$p; \
	done

.PHONY: lint
lint: proto-check ## gofmt, go vet, staticcheck (pinned in go.mod), and generated code up to date
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@echo "staticcheck (the first run builds it and takes a few minutes)"
	$(GO) tool staticcheck ./...

.PHONY: fmt
fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

.PHONY: proto
proto: ## regenerate Go code from proto/ (buf + protoc-gen-go, offline, pinned in go.mod)
	cd proto && $(GO) tool buf lint && $(GO) tool buf generate

.PHONY: proto-check
proto-check: proto ## fail when the checked-in generated code is stale
	git diff --exit-code -- proto/

.PHONY: image
image: ## build the container image (needs a container engine)
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE):$(VERSION) .

.PHONY: clean
clean: ## remove build outputs
	rm -rf bin
