# egw — the one entry point for building and testing.
#
#   make test     install what is missing (apt packages, .venv, the native extension, test binaries),
#                 then run ruff, mypy, the import-linter contracts, the CRD drift check and every pytest tier.
#   make check    the static checks only; make pytest  the test tiers only (assumes `make test` ran once).
#
# Later pieces plug in through mk/*.mk: each may append targets to TEST_TOOLS (built before pytest).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.egw-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

APT_PACKAGES := iproute2 iptables nftables wireguard-tools wireguard-go tcpdump kmod cpio busybox-static \
	qemu-system-x86 containernetworking-plugins gcc libc6-dev python3-dev python3-venv

# The Go toolchain of this machine kind lives in /usr/local/go/bin, which a non-login shell may not have on PATH.
export PATH := $(PATH):/usr/local/go/bin

TEST_TOOLS :=
-include mk/*.mk

.PHONY: test deps venv check pytest crds clean

test: deps venv $(TEST_TOOLS) check pytest
	@echo ">> make test: all green"

deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo ">> apt-get install$$missing"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo ">> apt packages already present"; fi

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h csrc/*.py)
	@echo ">> creating $(VENV) and installing egw with its native extension"
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip setuptools wheel cffi
	@$(PY) -m pip install -q -e '.[test,dev]'
	@touch $@

check: venv
	@echo ">> ruff"; $(VENV)/bin/ruff check egw tests bench
	@echo ">> mypy (strict on egw.model, egw.plan)"; $(VENV)/bin/mypy
	@echo ">> import-linter contracts"; $(VENV)/bin/lint-imports
	@echo ">> CRDs match the model"; $(PY) -m egw crds --check

pytest: venv
	@echo ">> pytest (all tiers)"
	@$(PY) -m pytest $(PYTEST_ARGS)

crds: venv
	@$(PY) -m egw crds

clean:
	rm -rf $(VENV) build *.egg-info egw/_native*.so
