# The course kit's two set-up commands are `make book` and `make test`; each creates (or refreshes)
# the virtual environment first, so they work on a fresh clone.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed

# nbgrader starts `alembic` as a subprocess, so the venv's bin/ must be on PATH.
export PATH := $(BIN):$(PATH)
export PYTHONHASHSEED := 0

.PHONY: help venv sysdeps proxy hub book test test-all test-loaded test-fast lint format bench clean distclean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# (Re)install when the venv is missing or pyproject.toml / environment.yml changed.
$(STAMP): pyproject.toml environment.yml
	@if [ -x "$(BIN)/python" ] && ! "$(BIN)/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then \
		echo "The venv is not Python 3.11: recreating it."; rm -rf "$(VENV)"; fi
	@if [ ! -x "$(BIN)/python" ]; then \
		echo "Creating $(VENV) with $(PYTHON)"; "$(PYTHON)" -m venv "$(VENV)"; fi
	"$(BIN)/python" -m pip install --quiet --upgrade pip
	"$(BIN)/python" -m pip install --quiet -e '.[test]'
	"$(BIN)/python" -m pip check
	@touch "$(STAMP)"

venv: $(STAMP)  ## Create or refresh the virtual environment only

sysdeps:  ## Install the system programs the tests drive (bubblewrap, chromium) when missing and root
	@bash .ci/system-packages

# JupyterHub's proxy (configurable-http-proxy), an npm package pinned in hub/package-lock.json.
PROXY := hub/node_modules/.bin/configurable-http-proxy

$(PROXY): hub/package.json hub/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix hub --no-audit --no-fund --loglevel=error && touch "$(PROXY)"; \
	else \
		echo "Note: npm is missing, so JupyterHub's proxy cannot be installed and the hub test"; \
		echo "cannot run: install Node.js 20+ with npm (apt-get install nodejs npm)."; \
	fi

proxy: $(PROXY)  ## Install JupyterHub's proxy into hub/node_modules (npm)

# A demo of the course hub on http://127.0.0.1:8000 (see hub/README.md): run as root, after
# creating the groups and accounts the README names.
hub: $(STAMP) $(PROXY)  ## Start the course JupyterHub on this machine (as root; see hub/README.md)
	"$(BIN)/jupyterhub" -f hub/jupyterhub_config.py

# The student releases that the assignment pages offer for download, regenerated only when an
# assignment's source, the course config or the release code changed (a stamp file records it).
RELEASES      := _build/student_notebooks
RELEASE_STAMP := $(RELEASES)/.released
RELEASE_DEPS  := $(shell find assignments/nbgrader_config.py assignments/source src/course_tools/grading \
                   -type f ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*/.ipynb_checkpoints/*' 2>/dev/null)

$(RELEASE_STAMP): $(STAMP) $(RELEASE_DEPS)
	"$(BIN)/course-tools" release --all --output $(RELEASES)
	@touch "$@"

book: $(STAMP) $(RELEASE_STAMP)  ## Build the book into _build/html (strict: any warning or cell error fails)
	"$(BIN)/jupyter-book" build . --warningiserror --nitpick --keep-going
	@echo "Book written to $(CURDIR)/_build/html/index.html"

# Tests run in TEST_WORKERS processes (pytest-xdist): a module's tests on one worker (or, where a
# module says so, each assignment's or each test's), and every test that reads the built book on one
# worker, so the book is built once; the book goes first, then the slow groups, then the quick ones,
# in that order (no reordering by size), so that both cores stay busy to the end (tests/conftest.py).
# Each worker runs torch with one OpenMP thread. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2
PYTEST := "$(BIN)/python" -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test: $(STAMP) sysdeps $(PROXY)  ## Run the tests (the strict book build, the grading proofs, the term and hub)
	$(PYTEST) -m "not exhaustive"

# Also the checks marked `exhaustive`: proof 5 of the grading pipeline on every real assignment
# (make test runs it on the fixture assignment). About 15 more minutes.
test-all: $(STAMP) sysdeps $(PROXY)  ## Run every test, the exhaustive checks included
	$(PYTEST)

# A busy hub: two CPU-bound processes take both cores while the whole suite runs. The suite has no
# wall-clock assertion, so it must pass here too, only slower.
test-loaded: $(STAMP) sysdeps $(PROXY)  ## Run every test while two busy loops compete for the CPU cores
	@pids=""; for i in 1 2; do "$(BIN)/python" -c 'while True: pass' & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null || true' EXIT; \
	echo "Two CPU-bound processes (pids$$pids) compete with the tests."; \
	$(PYTEST) -m "not exhaustive"

test-fast: $(STAMP)  ## Run the tests that are not marked slow, book or grading
	$(PYTEST) -m "not slow and not book and not grading"

lint: $(STAMP)  ## ruff lint and format check
	"$(BIN)/ruff" check .
	"$(BIN)/ruff" format --check .

format: $(STAMP)  ## Apply ruff's fixes and formatting
	"$(BIN)/ruff" check --fix .
	"$(BIN)/ruff" format .

# glibc returns torch's temporary buffers to the OS after every batch on these VMs, and the page
# faults cost about 30% of a CPU forward pass; these settings keep the buffers, for every timed peer.
bench: export MALLOC_MMAP_THRESHOLD_ := 17179869184
bench: export MALLOC_TRIM_THRESHOLD_ := 17179869184
bench: export MALLOC_TOP_PAD_ := 536870912
bench: $(STAMP)  ## Run the speed benchmarks (ratios against a peer measured in the same run)
	"$(BIN)/python" -m pip install --quiet -e '.[bench]'  # the peers the benchmarks name
	@status=0; for b in benchmarks/bench_*.py; do \
		echo "== $$b"; "$(BIN)/python" "$$b" || status=1; done; \
	echo "== grading: parallel course-tools grade vs serial nbgrader autograde"; \
	"$(BIN)/python" -m course_tools.grading.benchmark || status=1; exit $$status

clean:  ## Remove build outputs and caches (keeps the venv and everything under assignments/)
	rm -rf _build .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf

distclean: clean  ## Also remove the virtual environment, the hub's proxy and its state
	rm -rf "$(VENV)" hub/node_modules hub/state
