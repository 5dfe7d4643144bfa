# Sextant tasks. Needs only Python >= 3.11 and make: `make install` builds .venv/ from
# requirements.lock (with uv when it is on PATH, else pip), installing wheels only, so no
# compiler or system headers are needed. Everything else uses that venv.
#
#   make run                     # a first experiment, end to end
#   make test                    # sets up what the tests need (system packages as root,
#                                # MariaDB and PostgreSQL on 127.0.0.1), lints, runs the suite
#   make install EXTRAS=mysqlclient   # also the faster MariaDB driver (compiles; CI and images)

PYTHON  ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
             command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
             2>/dev/null && echo $$p && break; done)
PY      ?= .venv/bin/python
PYTEST  ?= .venv/bin/pytest
UV      ?= $(shell command -v uv 2>/dev/null)
EXTRAS  ?=
comma   := ,
STAMP   := .venv/.installed$(if $(EXTRAS),-$(subst $(comma),-,$(EXTRAS)))
PYTEST_ARGS ?= -n 2 --dist loadgroup -q tests

.PHONY: install proto test test-unit test-faults lint typecheck bench run clean test-containers

install: $(STAMP)

EDITABLE_UV  := -C editable_mode=compat
EDITABLE_PIP := --config-settings editable_mode=compat

# --seed: uv's venv gets pip too (deploy/docker/fill-wheelhouse downloads the image's wheels with it).
# editable_mode=compat: the editable install is one path line in a .pth; setuptools' default
# import-hook finder costs every Python start in the venv (each service, each local trial) ~15 ms
# of CPU.
# --compile-bytecode: pip always compiles, uv only when asked; without it the first `sextant up`
# has six services compiling scipy, optuna and grpc at once and can outlast the start-up wait.
$(STAMP): requirements.lock pyproject.toml Makefile
	@if [ -z "$(PYTHON)" ]; then printf '%s\n\n    %s\n\n%s\n' "make: Sextant needs Python >= 3.11 as python3 (or python3.11 ...) on PATH; on Debian 12 or Ubuntu 24.04 run:" \
	   "sudo apt-get install -y python3 python3-venv" "(older releases: install python3.11 and python3.11-venv, or any Python >= 3.11, then run make again)" >&2; exit 2; fi
	@if [ ! -x $(PY) ]; then \
	   if [ -z "$(UV)" ] && ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	     v=$$($(PYTHON) -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")'); \
	     echo "make: $(PYTHON) cannot create virtual environments; run: sudo apt-get install -y python$$v-venv" >&2; exit 2; fi; \
	   if [ -n "$(UV)" ]; then $(UV) venv -q --seed --python $(PYTHON) .venv; else $(PYTHON) -m venv .venv; fi; fi
	@if [ -n "$(UV)" ]; then \
	   $(UV) pip install --python $(PY) -q --compile-bytecode --only-binary :all: -r requirements.lock && \
	   $(UV) pip install --python $(PY) -q --no-deps $(EDITABLE_UV) -e . ; \
	 else $(PY) -m pip install -q --disable-pip-version-check --only-binary :all: -r requirements.lock && \
	   $(PY) -m pip install -q --disable-pip-version-check --no-deps $(EDITABLE_PIP) -e . ; fi
	@# An extra that compiles (mysqlclient) is checked first: a missing header gets the one
	@# apt-get command that installs it, not pip's pkg-config traceback.
	@if [ -n "$(EXTRAS)" ]; then $(PYTHON) scripts/testenv.py build-deps --extras "$(EXTRAS)" || exit 2; fi
	@if [ -n "$(EXTRAS)" ]; then \
	   if [ -n "$(UV)" ]; then $(UV) pip install --python $(PY) -q -c requirements.lock $(EDITABLE_UV) -e ".[$(EXTRAS)]"; \
	   else $(PY) -m pip install -q --disable-pip-version-check -c requirements.lock $(EDITABLE_PIP) -e ".[$(EXTRAS)]"; fi; fi
	@# An editable install leaves Sextant's own modules uncompiled: where bytecode is never written
	@# (PYTHONDONTWRITEBYTECODE), every `sextant` command would compile them again (~0.05-0.1 s of CPU).
	@$(PY) -m compileall -q sextant services >/dev/null
	@touch $@

# Regenerates sextant/api/ from proto/. tests/unit/test_proto_fresh.py fails when they differ.
proto: install
	$(PY) -m sextant.api.generate

# System packages first (they may be needed to build the EXTRAS), then the venv, lint, the suite.
test:
	@$(PYTHON) scripts/testenv.py packages --extras "$(EXTRAS)"
	@$(MAKE) --no-print-directory install lint
	$(PY) scripts/testenv.py run -- $(PYTEST) $(PYTEST_ARGS)

test-unit: install
	$(PYTEST) -q tests/unit

test-faults: install
	SEXTANT_FAULT_RUNS=30 $(PY) scripts/testenv.py run -- $(PYTEST) -q -m faults tests/e2e

lint: install typecheck
	.venv/bin/ruff check sextant services tests bench scripts

# mypy, strict, over every module ([tool.mypy] in pyproject.toml).
typecheck: install
	.venv/bin/mypy

# Builds the container images (local base images, no registry needed) and runs docker-compose
# for real; starts a Docker engine if none runs. Slow the first time (minutes), cached after.
test-containers:
	@$(PYTHON) scripts/testenv.py packages --containers --extras "$(EXTRAS)"
	@$(MAKE) --no-print-directory install
	$(PY) scripts/testenv.py run -- $(PYTEST) -q -s -m containers tests/containers

bench: install
	$(PY) -m bench.run_all

run: install
	$(PY) -m sextant.cli.main run -f examples/v1alpha3/random-example.yaml

clean:
	rm -rf .venv .sextant
