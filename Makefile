# Trailmap. `make run` and `make test` install what is missing and do the rest.
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
MINIO := $(GOBIN)/minio
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
JS_DIRS := recorder/js ui/web
CHROMIUM ?= /usr/bin/chromium

PG_INITDB := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))
FFMPEG ?= /usr/bin/ffmpeg

# Go native fuzz targets as package:Target; `make test` runs each briefly,
# `make fuzz` longer (FUZZTIME=10m make fuzz for a night run).
FUZZ_TARGETS := ./recorder:FuzzDecompress ./recorder:FuzzParseBatch ./recorder:FuzzRedactor_URL \
  ./recorder:FuzzParseBatch_redaction ./recorder:FuzzDecodeString \
  ./internal/jsonscan:FuzzEachField ./internal/wal:FuzzReplay \
  ./journey:FuzzParseSegment ./replay:FuzzStreamSegment
FUZZTIME ?= 2m

.PHONY: all build run test test-go bench lint deps js chromium minio postgresql ffmpeg fuzz fuzz-short clean

all: build

# Front-end bundles (recorder script, UI) built with npm + esbuild, embedded by go:embed.
js:
	@for d in $(JS_DIRS); do \
	  if [ -f $$d/package.json ]; then \
	    if [ ! -d $$d/node_modules ] || [ $$d/package-lock.json -nt $$d/node_modules/.package-lock.json ]; then \
	      (cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	    fi; \
	    (cd $$d && npm run --silent build) || exit 1; \
	  fi; \
	done

build: js
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/trailmap ./cmd/trailmap

run: build
	./bin/trailmap serve --log-format text

# The pinned MinIO server the S3 tests run against.
minio: $(MINIO)
$(MINIO):
	GOFLAGS= $(GO) install github.com/minio/minio@$(MINIO_VERSION)

# Debian's Chromium for the browser tests.
chromium: $(CHROMIUM)
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null

# Debian's PostgreSQL for the index tests (the harness runs initdb and
# postgres itself, on a free loopback port) and ffmpeg for renders.
postgresql:
	@if [ -z "$(PG_INITDB)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

ffmpeg: $(FFMPEG)
$(FFMPEG):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ffmpeg >/dev/null

deps: minio chromium postgresql ffmpeg js

test: deps build
	TRAILMAP_BIN=$(CURDIR)/bin/trailmap MINIO_BIN=$(MINIO) CHROMIUM_BIN=$(CHROMIUM) \
	  $(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory fuzz-short

# Each fuzz target for 2,000 inputs beyond its seed corpus (which the plain
# test run already covers); a crasher lands in testdata/fuzz and fails.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2000x

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg >/tmp/trailmap-fuzz.log 2>&1 || { cat /tmp/trailmap-fuzz.log; exit 1; }; \
	done; echo "fuzz: $(words $(FUZZ_TARGETS)) targets passed"

bench: deps build
	TRAILMAP_BIN=$(CURDIR)/bin/trailmap MINIO_BIN=$(MINIO) CHROMIUM_BIN=$(CHROMIUM) \
	  $(GO) test -run '^$$' -bench . -benchmem -benchtime 1x -timeout 60m ./... | tee bench.out

lint:
	$(GO) mod tidy -diff
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

clean:
	rm -rf bin
