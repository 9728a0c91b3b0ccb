# dotcom-mobile: the two commands a new user runs are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# Kotlin compiler, ktlint and the Swift chroot live outside the clone, so every clone
# (and CI) on this machine reuses them; the check scripts create them when absent.
export DOTCOM_TOOLCHAINS ?= $(HOME)/.cache/dotcom-mobile/toolchains

.PHONY: demo test test-fast install runner apps-check android-check ios-check clean

# Two installs, each done once (a stamp file per set): `make demo` needs the package and its
# runtime dependencies only; `make test` (and install, runner) add the test extra: pytest,
# pytest-xdist, hypothesis, pbxproj, onnx/onnxruntime (the ORT baseline) and cmake/ninja (the
# native runner). pip keeps its wheel cache (~/.cache/pip) between venvs and clones; the
# wheels of the pinned stack lie on local disk, so what an install spends is unpacking
# torch's ~5 GB (most of it the CUDA libraries its wheel depends on). --no-compile skips
# byte-compiling every installed .py (tens of thousands, most never imported); Python
# compiles what it imports on first use.
PIP := $(PY) -m pip install -q --no-compile
# ...and so that it can, every command below may write __pycache__. Some machines (the
# development machines of this project) export PYTHONDONTWRITEBYTECODE=1: then every process
# compiles the ~4,000 modules torch + executorch + timm import from source again, about
# 10 s per interpreter on 2 cores, and the demo and the tests start dozens of them (each
# isolated benchmark, each CLI test in a subprocess). Measured on the demo's benchmark
# child: 16 s -> 9 s per run.
unexport PYTHONDONTWRITEBYTECODE

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (dotcom-mobile needs Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) -e .
	@touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP) -e '.[test]'
	@touch $@

install: $(TEST_STAMP)

## demo: install (runtime dependencies only), then run the main job (quantize -> export -> bench -> report) on DoTCoM-Tiny.
demo: $(STAMP)
	$(VENV)/bin/dotcom-mobile demo

# pytest runs on two xdist workers. Lowering and quantization are mostly single-threaded
# Python, so a second worker uses the second core. Tests are sent to workers a module at a
# time (--dist loadscope), so a module's fixtures (a quantization, an export) are built once,
# not once per worker; the session-wide Tiny artifacts are built by one worker behind a file
# lock and read by the other (tests/conftest.py). Each worker gets half the cores for torch,
# so two OpenMP pools do not spin-wait each other. Measured on 2 cores (AMD EPYC Zen 4):
# 1219 s in one process (before tests/test_layer_speed.py shared the exports), 929 s on two
# workers test by test (--dist loadgroup: module fixtures built twice), 670 s on two workers
# a module at a time.
# PYTEST_WORKERS=0 runs everything in this process (for a debugger).
PYTEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadscope

## test: install, then run every test: Kotlin and Swift cores, the native runner, pytest (slow ones included).
# --durations: CI's log names the slowest tests, where the next minutes of a run are to be won.
test: $(TEST_STAMP) apps-check runner
	$(PYTEST) --durations=20

## test-fast: skip tests marked slow (under 3 minutes on 2 cores).
test-fast: $(TEST_STAMP)
	$(PYTEST) -m "not slow"

## runner: build the native C++ benchmark runner against the installed executorch wheel.
runner: $(TEST_STAMP)
	$(PY) -m dotcom_mobile.bench.native build

## apps-check: compile and test the apps' platform-free cores (Kotlin, Swift), lint, parse the app sources.
apps-check: android-check ios-check

android-check:
	bash android_demo/tools/check.sh

ios-check:
	bash ios_demo/tools/check.sh

clean:
	rm -rf build runner/build dotcom_mobile_out
