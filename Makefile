# Sextant tasks. `make install` builds .venv/ from requirements.lock; everything else uses it.
PY      ?= .venv/bin/python
PYTEST  ?= .venv/bin/pytest
UV      ?= $(shell command -v uv 2>/dev/null)

.PHONY: install proto test test-unit test-faults lint bench run clean

install: .venv/.installed

.venv/.installed: requirements.lock pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	@if [ -n "$(UV)" ]; then $(UV) pip install --python $(PY) -q -r requirements.lock && \
	   $(UV) pip install --python $(PY) -q --no-deps -e . ; \
	 else $(PY) -m pip install -q -r requirements.lock && $(PY) -m pip install -q --no-deps -e . ; fi
	@touch $@

# Regenerates sextant/api/ from proto/. tests/unit/test_proto_fresh.py fails when they differ.
proto: install
	$(PY) -m sextant.api.generate

test: install
	$(PYTEST) -n 2 --dist loadgroup -q tests

test-unit: install
	$(PYTEST) -q tests/unit

test-faults: install
	SEXTANT_FAULT_RUNS=30 $(PYTEST) -q -m faults tests/e2e

# Builds the container images (local base images, no registry needed) and runs docker-compose
# for real; starts a Docker engine if none runs. Slow the first time (minutes), cached after.
.PHONY: test-containers
test-containers: install
	$(PYTEST) -q -s -m containers tests/containers

lint: install
	.venv/bin/ruff check sextant services tests bench

bench: install
	$(PY) -m bench.run_all

run: install
	$(PY) -m sextant.cli.main run -f examples/v1alpha3/random-example.yaml

clean:
	rm -rf .venv .sextant
