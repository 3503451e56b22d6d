# OpsPulse: `make demo` runs the product, `make test` runs the tests.
# Both set up everything they need (virtualenv, Python and npm packages, assets,
# Chromium for the browser tests) and can be run again at any time.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: demo test setup assets browser redis bench bench-quick stop-db clean

demo: setup assets
	$(PY) scripts/demo.py

# The Redis live transport is always tested: against REDIS_URL when a Redis answers
# there, else against one of the tests' own, on a free port, stopped afterwards.
test: setup assets browser redis
	$(PY) scripts/with_redis.py $(PY) -m pytest

setup: $(PIP_STAMP)

$(PIP_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Tailwind scans the templates, so the build runs every time (about a second).
assets: $(NPM_STAMP)
	npm run --silent build

# The browser tests drive Debian's Chromium (a browser download is not possible here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Chromium from Debian's packages for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

redis:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "Installing Redis from Debian's packages for the Redis transport's tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

# Benchmarks print their figures and write them to bench/results/*.json (bench/README.md);
# all of them take about 45 minutes. BENCH_FLAGS go to every script but live_latency.py,
# e.g. BENCH_FLAGS=--scratch-db.
bench: setup assets
	$(PY) manage.py migrate --noinput -v 0
	$(PY) bench/live_latency.py
	$(PY) bench/drain.py $(BENCH_FLAGS)
	$(PY) bench/ingest.py $(BENCH_FLAGS)
	$(PY) bench/e2e.py $(BENCH_FLAGS)
	$(PY) bench/dashboard.py $(BENCH_FLAGS)
	$(PY) bench/connections.py $(BENCH_FLAGS)
	$(PY) bench/peak.py $(BENCH_FLAGS)

# The guard for any change on the webhook → job → screen path (about five minutes): the
# drain, the end-to-end run and a short peak, on this tree and on BASE (default HEAD) in turns.
bench-quick: setup assets
	$(PY) bench/quick.py $(if $(BASE),--base $(BASE))

stop-db:
	$(PY) -m opspulse.lib.embedded_postgres stop

clean: stop-db
	rm -rf $(VENV) node_modules opspulse/static/build var

# Every fault test, with those that restart PostgreSQL and Redis (excluded from `make
# test`), the fuzzers at 10,000 examples per platform and their slow senders.
.PHONY: chaos
chaos: setup redis
	FUZZ_EXAMPLES=10000 FUZZ_TRICKLE_SECONDS=30 $(PY) scripts/with_redis.py $(PY) -m pytest -m "chaos or not chaos" tests/chaos
