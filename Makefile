# SER Workbench. Two commands set everything up on a fresh machine with Python 3.11 + pip:
#   make demo   -> create .venv, install, generate the default corpus, run all notebooks into runs/
#   make test   -> create .venv if needed, run unit tests (the Ray backend's on a local Ray
#                  instance included: installs the ray extra), smoke notebooks, nbval checks,
#                  the docs site in strict mode, and the browser test where Chromium is present.
#                  It installs Python packages into .venv only, never system packages.
# Developer tools (notebook hygiene, benchmarks) live in tools/, not in the library.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# CPU installs pin this torch. GPU users: install a CUDA build of torch into .venv first
# (see README), then pass TORCH= (empty) so it is kept.
TORCH ?= torch==2.13.0
CORPUS_SIZE ?= demo
CORPUS_SEED ?= 0

# Keep Jupyter/IPython state inside the project so runs do not depend on the user's home.
export WORKBENCH_DATA ?= $(CURDIR)/data
export WORKBENCH_CACHE ?= $(CURDIR)/.cache/features
export WORKBENCH_RUNS ?= $(CURDIR)/runs
export IPYTHONDIR := $(CURDIR)/.jupyter/ipython
export JUPYTER_CONFIG_DIR := $(CURDIR)/.jupyter/config
export JUPYTER_DATA_DIR := $(CURDIR)/.jupyter/data
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.jupyter/runtime
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: install lock demo test test-ray e2e-if-present lint unit notebooks-smoke nbval corpus corpus-smoke lab scrub nbref check-notebooks docs clean

install: $(VENV)/.installed

# Installs take the exact versions in constraints.txt (what the last passing `make test` used);
# pyproject.toml keeps the ranges a library user installs against. torch is not in the lock:
# TORCH above pins it for CPU installs and a GPU user brings a CUDA build.
LOCK := constraints.txt
PIP_INSTALL = $(BIN)/pip install --quiet $(if $(wildcard $(LOCK)),-c $(LOCK))

$(VENV)/.installed: pyproject.toml $(wildcard $(LOCK))
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@mkdir -p $(IPYTHONDIR) $(JUPYTER_CONFIG_DIR) $(JUPYTER_DATA_DIR) $(JUPYTER_RUNTIME_DIR)
	$(BIN)/pip install --upgrade --quiet pip
	@if [ -n "$(TORCH)" ]; then $(BIN)/pip install --quiet "$(TORCH)"; fi
	$(PIP_INSTALL) -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (workbench)" >/dev/null
	@touch $@

# Rewrite constraints.txt from what .venv holds now: run after a passing `make test` (to move to
# newer releases: delete constraints.txt and .venv, `make test`, then `make lock`). The e2e extra
# and docs extras are installed first so the browser test's and the docs site's packages are locked too.
lock: install
	$(PIP_INSTALL) -e '.[test,ray,e2e,docs]'
	@{ echo "# Exact versions of a passing 'make test' (regenerate with 'make lock'; ranges live in pyproject.toml)."; \
	   echo "# torch is pinned by the Makefile's TORCH (CPU) or brought by a GPU user, so it is not listed."; \
	   $(BIN)/pip freeze --exclude-editable | grep -viE '^(torch|ser-workbench)[=@ ]' | LC_ALL=C sort -f; } > $(LOCK).tmp
	@mv $(LOCK).tmp $(LOCK) && echo "wrote $(LOCK) ($$(grep -vc '^#' $(LOCK)) packages)"

# Generate the synthetic corpus for CORPUS_SIZE/CORPUS_SEED unless it is already there (`make clean` drops it).
CORPUS_DIR = $(WORKBENCH_DATA)/synthetic-$(CORPUS_SIZE)-seed$(CORPUS_SEED)
corpus: install
	@test -f $(CORPUS_DIR)/IEMOCAP_full_release/SYNTHETIC_README.txt \
	  || $(BIN)/workbench corpus synth --corpus-size $(CORPUS_SIZE) --corpus-seed $(CORPUS_SEED) --out $(CORPUS_DIR)

# The smoke corpus the tests and smoke notebooks read.
corpus-smoke:
	@$(MAKE) --no-print-directory corpus CORPUS_SIZE=smoke CORPUS_SEED=0

# The main job: default corpus, every notebook headless into runs/demo/, summary at the end.
demo: install
	$(MAKE) corpus CORPUS_SIZE=demo CORPUS_SEED=0
	$(BIN)/workbench batch grids/demo.yaml --out $(WORKBENCH_RUNS)/demo

# `make test` runs the Ray backend's tests on a local Ray instance, so it installs that extra
# (`make demo` does not need it).
RAY_INSTALLED := $(VENV)/.installed-ray
$(RAY_INSTALLED): $(VENV)/.installed
	$(PIP_INSTALL) -e '.[test,ray]'
	@touch $@

# The docs extra (mkdocs, mkdocstrings, griffe) before the unit tests: tests/test_docs_site.py imports it.
DOCS_INSTALLED := $(VENV)/.installed-docs
$(DOCS_INSTALLED): $(VENV)/.installed
	$(PIP_INSTALL) -e '.[test,docs]'
	@touch $@

test: install $(RAY_INSTALLED) $(DOCS_INSTALLED) check-notebooks corpus-smoke lint unit notebooks-smoke nbval docs e2e-if-present

# Lint (configuration: [tool.ruff] in pyproject.toml): unused imports and variables, undefined
# names, import order, in workbench/, tests/ and tools/. `ruff check --fix .` repairs most.
lint: install
	$(BIN)/ruff check workbench tests tools

# WORKBENCH_REQUIRE_RAY: the Ray tests fail instead of skipping when Ray is missing.
unit:
	WORKBENCH_REQUIRE_RAY=1 $(BIN)/pytest -q tests workbench

# Every notebook through papermill with the smoke parameters (tests/notebooks/smoke.yaml).
notebooks-smoke:
	$(BIN)/workbench batch tests/notebooks/smoke.yaml --out $(WORKBENCH_RUNS)/smoke

# Regression check: cells tagged nbval-check-output against committed reference outputs.
nbval:
	$(BIN)/pytest -q -p no:cacheprovider --nbval-lax --nbval-sanitize-with tests/notebooks/sanitize.cfg tests/notebooks/*.ipynb

# Regenerate the reference notebooks in tests/notebooks/ (review the diff like a snapshot).
nbref: install corpus-smoke
	$(BIN)/python tools/notebooks.py reference tests/notebooks/smoke.yaml tests/notebooks

# The task executor (workbench/distributed.py) alone: every backend, Ray on a local instance
# (part of `make unit` too).
test-ray: $(RAY_INSTALLED)
	WORKBENCH_REQUIRE_RAY=1 $(BIN)/pytest -q -p no:cacheprovider tests/test_distributed.py

# The documentation site (mkdocs.yml: docs/*.md and an API reference from the docstrings) into
# site/, in strict mode: a broken link, a page missing from the nav or an unresolved API object fails.
# (Not with --quiet: it drops the warnings that strict mode counts, and the build passes.)

docs: $(DOCS_INSTALLED)
	$(BIN)/mkdocs build --strict

check-notebooks:
	$(BIN)/python tools/notebooks.py check notebooks

scrub:
	$(BIN)/python tools/notebooks.py scrub notebooks

# Jupyter refuses to run as root without --allow-root; containers often run as root, so it is
# added there, and said, since it is a choice the user should know was made for them.
lab: install
	@if [ "$$(id -u)" = 0 ]; then echo "make lab: running as root, so passing --allow-root to jupyter lab (bound to localhost, token required)"; fi
	$(BIN)/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# The notebooks in a real JupyterLab: headless Debian Chromium driven by Playwright (no browser
# download), notebooks 01 and 06 on the smoke corpus, and 06's page from `workbench batch` opened
# offline (nothing loaded from outside its folder; the explorer's static view drawn); screenshots
# in runs/e2e/. Installs
# playwright (pip, into .venv) when missing but no system package: without Chromium it stops
# and prints the command that installs it (.ci/run runs that command on CI before `make test`).
.PHONY: e2e
CHROMIUM ?= /usr/bin/chromium
CHROMIUM_INSTALL := apt-get install -y chromium
e2e: install corpus-smoke
	@test -x $(CHROMIUM) || { echo "make e2e: $(CHROMIUM) is missing; install it first (Debian: sudo $(CHROMIUM_INSTALL)) or pass CHROMIUM=/path/to/chromium"; exit 1; }
	@$(BIN)/python -c "import playwright" 2>/dev/null || $(PIP_INSTALL) -e '.[e2e]'
	WORKBENCH_E2E=1 WORKBENCH_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -q -s -p no:cacheprovider --durations=0 tests/e2e

# In `make test`: the browser test runs where Chromium is present; elsewhere it says so and
# how to get it.
e2e-if-present:
	@if [ -x $(CHROMIUM) ]; then $(MAKE) --no-print-directory e2e; \
	else echo "e2e skipped: $(CHROMIUM) is missing (install it with: sudo $(CHROMIUM_INSTALL); then make e2e)"; fi

clean:
	rm -rf runs .cache .jupyter .pytest_cache data site
