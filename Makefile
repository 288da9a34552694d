# The two commands (README): `make run` starts the app and the dispatcher (Procfile, run by
# honcho) on SQLite with demo data;
# `make test` runs the whole suite. Both install everything first, into .venv.
# `make test-fast` is for the edit loop: the unit and service tests, on SQLite only.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app ops_portal
HOST ?= 127.0.0.1
PORT ?= 5000
# `make bench` benchmarks the app on SQLite (`make bench DB=postgresql` on the server at
# POSTGRES_URL); figures are printed and written to benchmarks/results/$(DB).json.
# `make bench-dispatch` simulates a day of dispatch on a new database of $(DB)
# (benchmarks/dispatch_sim.py) and writes benchmarks/results/dispatch_$(DB).json.
DB ?= sqlite
POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
# The whole suite runs in parallel (pytest-xdist), a process per core; TEST_WORKERS=0: in one.
TEST_WORKERS ?= auto

.PHONY: run test test-fast install demo-reset lint format bench bench-dispatch bench-live bench-providers

run: install
	$(FLASK) db upgrade
	$(FLASK) demo --url http://$(HOST):$(PORT)/
	PATH="$(abspath $(BIN)):$$PATH" HOST=$(HOST) $(BIN)/honcho start --port $(PORT)

test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-fast: install
	env -u OPS_PORTAL_TEST_POSTGRES_URL $(BIN)/python -m pytest -n $(TEST_WORKERS) tests/unit tests/services $(PYTEST_ARGS)

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

demo-reset: install
	$(FLASK) demo --reset --url http://$(HOST):$(PORT)/

# ruff: the style check CI runs before the suite (`make format` rewrites what it would refuse).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m benchmarks --db $(DB) --postgres-url $(POSTGRES_URL) $(BENCH_ARGS)

bench-dispatch: install
	$(BIN)/python -m benchmarks.dispatch_sim --db $(DB) --postgres-url $(POSTGRES_URL) $(BENCH_ARGS)

# `make bench-live` loads the live pages: 2,000 streams on one gevent worker, a change every
# 0.3 s, a restart; figures printed and written to benchmarks/results/live_$(DB).json.
bench-live: install
	$(BIN)/python -m benchmarks.live --db $(DB) --postgres-url $(POSTGRES_URL) $(BENCH_ARGS)

# `make bench-providers` reads the provider list at 1,000 and 5,000 providers from today's app
# and from the app before the scale work; benchmarks/results/providers_$(DB).json.
bench-providers: install
	$(BIN)/python -m benchmarks.provider_list --db $(DB) --postgres-url $(POSTGRES_URL) $(BENCH_ARGS)
