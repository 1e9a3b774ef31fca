# shipgate — the two commands a newcomer needs: `make dev` (run it locally) and `make test` (run every test).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CARGO ?= cargo
ARCH ?= arm64

.PHONY: setup dev test lint fmt fuzz lint-infra build deploy clean

PORT ?= 9000

## setup: create ./.venv and install the pinned Python tools (moto server, template linters)
setup: $(STAMP)

$(STAMP): requirements-dev.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

## dev: run the whole control plane locally (moto stands in for AWS) on 127.0.0.1:$(PORT)
dev: setup
	$(CARGO) build -p shipgate
	./target/debug/shipgate dev --port $(PORT)

## test: everything CI runs — formatting, clippy, template lint, all tests (moto tests included)
test: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	SHIPGATE_REQUIRE_MOTO=1 $(CARGO) test --workspace
	$(CARGO) build -p shipgate
	SHIPGATE_REQUIRE_BROWSER=1 bash scripts/browser-test.sh

## fuzz: every cargo-fuzz target for FUZZ_SECONDS each (libFuzzer; crashes land in fuzz/artifacts)
FUZZ_SECONDS ?= 60
fuzz:
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

## lint: formatting and clippy only
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV) .shipgate
