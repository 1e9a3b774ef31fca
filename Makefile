# shipgate — the two commands a newcomer needs: `make dev` (run it locally) and `make test` (run every test).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CARGO ?= cargo
ARCH ?= arm64

.PHONY: setup dev test lint release-deps fmt fuzz bench bench-push lint-infra build deploy docs-check clean

PORT ?= 9000

## setup: ./.venv with the pinned moto server; ./.venv-infra with the template linters and the
## Lambda cross-build tools (separate: checkov pins an older boto3 than moto's server needs);
## ./.venv-sam with the pinned AWS SAM CLI (separate again: it pins another boto3 than checkov)
setup: $(STAMP)
	@source scripts/infra-venv.sh && infra_venv_ready && sam_venv_ready

$(STAMP): requirements-dev.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

## dev: run the whole control plane locally (moto stands in for AWS) on 127.0.0.1:$(PORT)
dev: $(STAMP)
	$(CARGO) build -p shipgate
	./target/debug/shipgate dev --port $(PORT)

## test: everything CI runs — formatting, clippy, no sandbox/test code in a Lambda binary,
## template lint, all tests (moto tests included)
test: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	scripts/check-release-deps.sh
	scripts/lint-infra.sh
	SHIPGATE_REQUIRE_MOTO=1 $(CARGO) test --workspace
	$(CARGO) build -p shipgate
	SHIPGATE_REQUIRE_BROWSER=1 bash scripts/browser-test.sh

## fuzz: every cargo-fuzz target for FUZZ_SECONDS each (libFuzzer; crashes land in fuzz/artifacts)
FUZZ_SECONDS ?= 60
fuzz:
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

## bench: performance evidence (release build, Lambda Runtime API emulator, boto3 peer, criterion);
## one table printed, JSON in target/bench/results.json. Not part of make test.
bench: $(STAMP)
	bash bench/run.sh

## bench-push: push latency against the number of pipelines (1 to 1,000) on moto; a table
## (bench/README.md "Push cost and organisation size"). Not part of make test.
bench-push: $(STAMP)
	cargo run --quiet -p shipgate-tests --example push_scaling

## lint-infra: cfn-lint + checkov on infra/ (and the SAM-expanded template), hello-service tests
lint-infra:
	scripts/lint-infra.sh

## build: cargo lambda build --release for every functions/* crate (arm64; ARCH=x86_64 to override)
build:
	ARCH=$(ARCH) scripts/build-lambdas.sh

## deploy: sam build && sam deploy with infra/samconfig.toml (copy infra/samconfig.example.toml);
## without one, sam deploy --guided (which writes it). SAM_ENV=staging deploys [staging.*];
## SAM_DEPLOY_ARGS='--parameter-overrides "..."' adds arguments. SAM CLI from .venv-sam,
## cargo-lambda and zig from .venv-infra.
SAM_ENV ?= default
SAM_DEPLOY_ARGS ?=
deploy:
	source scripts/infra-venv.sh && infra_venv_ready && sam_venv_ready && cd infra && \
	if [ -f samconfig.toml ]; then \
		sam build --config-env $(SAM_ENV) && sam deploy --config-env $(SAM_ENV) $(SAM_DEPLOY_ARGS); \
	else \
		echo "no infra/samconfig.toml: guided deploy (it writes one; see infra/samconfig.example.toml)"; \
		sam build && sam deploy --guided $(SAM_DEPLOY_ARGS); \
	fi

## docs-check: run the `sh local` blocks of README.md and docs/*.md against a fresh sandbox each
## (cli/tests/doc_commands.rs; part of make test through cargo test)
docs-check: $(STAMP)
	SHIPGATE_REQUIRE_MOTO=1 $(CARGO) test -p shipgate --test doc_commands -- --nocapture

## lint: formatting and clippy only
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## release-deps: no functions/* crate links the sandbox crate or a test feature, alone or in a
## workspace-wide build (scripts/check-release-deps.sh; part of make test)
release-deps:
	CARGO=$(CARGO) scripts/check-release-deps.sh

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV) .venv-infra .venv-sam .shipgate
