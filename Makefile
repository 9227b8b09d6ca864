# Xueliang (雪亮) — make help lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/xueliang
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/xueliang/xueliang/internal/app.Version=$(VERSION)
# Test timeout per package; the whole suite aims at well under 20 minutes on 2 cores.
TEST_TIMEOUT ?= 15m
# The S3 server that the recording tests start (a gateway serving a folder over S3).
VERSITYGW_VERSION ?= v1.8.0

.PHONY: help build demo test test-deps test-go lint bench fuzz clips clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

build: ## build bin/xueliang
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/xueliang

demo: build ## run the platform with a simulated city (http://127.0.0.1:8080)
	./$(BIN) demo $(DEMO_ARGS)

test-deps: ## install what the tests need (ffmpeg, ffprobe, chromium, a CJK font, socat, sipp, sipsak, playwright-core, versitygw)
	@missing=""; for p in ffmpeg:ffmpeg chromium:chromium socat:socat sipp:sip-tester sipsak:sipsak; do \
	  command -v $${p%%:*} >/dev/null || missing="$$missing $${p#*:}"; done; \
	[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || \
	  { echo "could not install$$missing: run as root or install them yourself"; exit 1; }; fi; \
	for c in ffmpeg ffprobe chromium socat sipp sipsak; do command -v $$c >/dev/null || { echo "$$c is still missing after apt-get: install it (Debian package of the same name; ffprobe comes with ffmpeg, sipp with sip-tester)"; exit 1; }; done
	@cd tests/browser && [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --silent
	@command -v versitygw >/dev/null || [ -x "$$($(GO) env GOPATH)/bin/versitygw" ] || \
	  { echo "installing versitygw $(VERSITYGW_VERSION) (the S3 server of the tests)"; \
	  $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION); }

test: test-deps test-go ## run every test (Go with -race, fuzz seed corpora, the browser test)

test-go:
	$(GO) vet ./...
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

lint: ## gofmt, go vet, go mod tidy check
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@cp go.mod /tmp/xl.go.mod; cp go.sum /tmp/xl.go.sum; $(GO) mod tidy; \
	  if ! diff -q go.mod /tmp/xl.go.mod >/dev/null || ! diff -q go.sum /tmp/xl.go.sum >/dev/null; then \
	  echo "go mod tidy changed go.mod/go.sum"; exit 1; fi

bench: test-deps ## run the benchmarks (see docs/BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchmem ./internal/media/ ./internal/egress/llhls/ ./internal/sim/ ./internal/gb28181/ps/ ./internal/gb28181/manscdp/ ./internal/gb28181/rtprecv/
	XUELIANG_BENCH=1 $(GO) test -run '^(TestRelayBenchmark|TestRecordBenchmark|TestIndexBenchmark|TestGBRegistrationBenchmark|TestGBIngestBenchmark|TestGBFirstFrameBenchmark)$$' -v -timeout 120m ./internal/bench/

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

clips: ## regenerate the simulator's clips (needs ffmpeg)
	scripts/gen-clips.sh

clean:
	rm -rf bin
