# fwvet: make demo (install, build, run the example), make test (the suite).
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
BUILD := testdata/build
# Go 1.27.3, which the go command fetches from the module proxy once.
export GOTOOLCHAIN := go1.27.3

.PHONY: all build demo test lint fixtures setup bench fuzz clean

# Each fuzz target runs this long in `make test`; longer runs: make fuzz FUZZTIME=10m.
# New inputs are minimized briefly, or a parser with large seeds spends its
# whole run minimizing.
FUZZTIME ?= 8s
FUZZ_TARGETS := FuzzUnpack:./pipeline/unpack FuzzCarve:./pipeline/unpack FuzzWalk:./pipeline/unpack/squashfs FuzzSquashfs3:./pipeline/unpack/squashfs3 \
	FuzzTar:./pipeline/unpack/archive FuzzCpio:./pipeline/unpack/archive FuzzZip:./pipeline/unpack/archive \
	FuzzExt4:./pipeline/unpack/ext4 FuzzJFFS2:./pipeline/unpack/jffs2 FuzzUBI:./pipeline/unpack/ubi \
	FuzzUBIFS:./pipeline/unpack/ubifs FuzzUImage:./pipeline/unpack/uboot FuzzFIT:./pipeline/unpack/uboot \
	FuzzSparse:./pipeline/unpack/sparse FuzzIHex:./pipeline/unpack/ihex FuzzDecompress:./pipeline/unpack/compression \
	FuzzBlock:./pipeline/unpack/block FuzzVerify:./pipeline/attest FuzzLoad:./pipeline/policy FuzzRules:./pipeline/equivalence FuzzPackedELF:./pipeline/analyze FuzzConfigParsers:./pipeline/analyze \
	FuzzFunctions:./pipeline/disasm FuzzThumb:./pipeline/disasm FuzzMIPS:./pipeline/disasm FuzzX86:./pipeline/disasm \
	FuzzListing:./pipeline/disasm FuzzInlineCompares:./pipeline/disasm FuzzMIPSText:./pipeline/disasm FuzzThumbText:./pipeline/disasm

all: build

setup:
	scripts/setup

build:
	$(GO) build -trimpath -o bin/fwvet ./cmd/fwvet

fixtures: setup
	scripts/mkfixtures
	scripts/mkcorpus

# The demo: a clean update (pass) and a backdoored one (fail), against the
# same baseline, recorded in a store of its own.
# It installs only what it needs (no cosign, crane or fixture tools).
demo:
	scripts/setup demo
	$(MAKE) --no-print-directory build
	scripts/mkfixtures demo
	scripts/demo

lint: setup
	@out=$$(gofmt -l cmd pipeline verifiers 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

test: fixtures lint
	$(GO) test -count=1 -timeout 20m ./...
	@# Again with the Go block decoders, which builds without cgo use.
	$(GO) test -count=1 -tags purego ./pipeline/unpack/block ./pipeline/unpack/squashfs ./pipeline/unpack/ubifs
	$(GO) test -count=1 -tags purego -run 'TestFormatsMatchTheirSource|TestSquashfsAgreesWithUnsquashfs|TestHostileInputs' ./pipeline/unpack
	$(MAKE) --no-print-directory fuzz

fuzz: fixtures
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz $(FUZZ_TARGETS)

bench: build
	scripts/setup bench
	scripts/mkfixtures
	scripts/bench
	scripts/bench-audit
	scripts/bench-verify
	scripts/bench-gate
	scripts/bench-unpack
	BENCH_OUT=/dev/shm/fwvet-bench scripts/bench-unpack

clean:
	rm -rf bin $(BUILD)
