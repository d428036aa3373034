# fwvet: make demo (install, build, run the example), make test (the suite).
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
BUILD := testdata/build
export GOTOOLCHAIN := local

.PHONY: all build demo test lint fixtures setup bench clean

all: build

setup:
	scripts/setup

build:
	$(GO) build -trimpath -o bin/fwvet ./cmd/fwvet

fixtures: setup
	scripts/mkfixtures

# The demo: a clean update (pass) and a backdoored one (fail), against the
# same baseline, recorded in a store of its own.
demo: setup build
	scripts/mkfixtures demo
	scripts/demo

lint: setup
	@out=$$(gofmt -l cmd pipeline verifiers 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

test: fixtures lint
	$(GO) test -count=1 -timeout 20m ./...

bench: build
	scripts/setup bench
	scripts/mkfixtures
	scripts/bench

clean:
	rm -rf bin $(BUILD)
