# dotcom-mobile: the two commands a new user runs are `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Kotlin compiler, ktlint and the Swift chroot live outside the clone, so every clone
# (and CI) on this machine reuses them; the check scripts create them when absent.
export DOTCOM_TOOLCHAINS ?= $(HOME)/.cache/dotcom-mobile/toolchains

.PHONY: demo test test-fast install runner apps-check android-check ios-check clean

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (dotcom-mobile needs Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

install: $(STAMP)

## demo: install, then run the main job (quantize -> export -> bench -> report) on DoTCoM-Tiny.
demo: $(STAMP)
	$(VENV)/bin/dotcom-mobile demo

## test: install, then run every test: Kotlin and Swift cores, the native runner, pytest (slow ones included).
test: $(STAMP) apps-check runner
	$(PY) -m pytest -q

## test-fast: skip tests marked slow.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

## runner: build the native C++ benchmark runner against the installed executorch wheel.
runner: $(STAMP)
	$(PY) -m dotcom_mobile.bench.native build

## apps-check: compile and test the apps' platform-free cores (Kotlin, Swift), lint, parse the app sources.
apps-check: android-check ios-check

android-check:
	bash android_demo/tools/check.sh

ios-check:
	bash ios_demo/tools/check.sh

clean:
	rm -rf build runner/build dotcom_mobile_out
