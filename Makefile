# `make run`: install, write the default config (two local stores), mount at ./mnt.
# `make test`: install, then the whole suite (it starts the local servers itself).
# `make lint`: ruff and mypy from their own venv, which needs no apt.
SHELL := /bin/bash
# every recipe line stops at its first failure, and a pipeline fails when any part of it does
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
OMNIFS := $(VENV)/bin/omnifs
STAMP := $(VENV)/.installed
MNT := mnt
DAEMON_PID := .omnifs-data/daemon.pid
PYTEST_ARGS ?=
# pins every installed package to the version the suite passed with (see constraints.txt)
CONSTRAINTS := constraints.txt
# pip's noise filtered out (constraints naming packages not installed; setuptools' banner on
# every editable install); grep finding nothing to print is no failure, pip's status stays
QUIET_PIP := { grep -v -e "is ignored" -e "BuildBackendWarning: Editable installation" \
    -e "^ *!!$$" -e "^ *[*]*$$" -e "Please be careful with folders" \
    -e "name as your package as they may" -e "with strategy, WheelFile" || true; }
# The linters' venv: ruff, mypy and every runtime dependency that installs from a wheel, at the
# pinned versions, so the type check gives one answer here and in CI. pyfuse3 is left out: it
# builds against libfuse3-dev (apt), and mypy takes it as a missing import.
LINT_VENV := .venv-lint
LINT_STAMP := $(LINT_VENV)/.installed
LINT_PACKAGES := ruff mypy trio diskcache boto3 google-cloud-storage azure-storage-blob minio \
	prometheus-client rich matplotlib cronsim cryptography psycopg psycopg-pool
LINT_PATHS := omnifs providers policy mountfs daemon tests bench
# mypy reads module names off folders: this tree of links lays the sources out as they install
# (omnifs/mountfs, omnifs/daemon, omnifs/providers, omnifs/policy); sed gives its findings
# their paths in the repository back.
LINT_TREE := $(LINT_VENV)/tree

.PHONY: install run stop test lint typecheck bench clean constraints

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS) package.json scripts/install-system.sh
	./scripts/install-system.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[test]' 2>&1 | $(QUIET_PIP)
	$(PY) -c "import pyfuse3, trio, boto3, moto, gcp_storage_emulator, azure.storage.blob, minio, diskcache"
	npm install --no-audit --no-fund --loglevel=error
	touch $(STAMP)

# The data directory, the daemon's log and pid file are private (umask 077), as
# everything omnifs writes itself is; an older, wider log is replaced, not reused.
run: install
	@test -f omnifs.toml || $(OMNIFS) init
	@mkdir -p $(MNT) && mkdir -p -m 700 .omnifs-data
	@if mountpoint -q $(MNT); then echo "already mounted at ./$(MNT)"; else $(OMNIFS) mount $(MNT); fi
	@umask 077; if [ -f $(DAEMON_PID) ] && kill -0 $$(cat $(DAEMON_PID)) 2>/dev/null; then \
	    echo "daemon already running (pid $$(cat $(DAEMON_PID)))"; \
	else \
	    rm -f .omnifs-data/daemon.log; \
	    nohup $(OMNIFS) daemon >.omnifs-data/daemon.log 2>&1 & echo $$! >$(DAEMON_PID); \
	    sleep 1; kill -0 $$(cat $(DAEMON_PID)) 2>/dev/null || { cat .omnifs-data/daemon.log; exit 1; }; \
	fi
	@echo "omnifs is mounted at ./$(MNT) over the two local stores in omnifs.toml, and its daemon"
	@echo "replicates every file to both (log: .omnifs-data/daemon.log)."
	@echo "  use it:    cp -a ~/some/dir $(MNT)/ ; ls -l $(MNT) ; $(OMNIFS) replicas $(MNT)/FILE"
	@echo "  status:    $(OMNIFS) status"
	@echo "  stop it:   make stop"

stop:
	-@if [ -f $(DAEMON_PID) ]; then kill $$(cat $(DAEMON_PID)) 2>/dev/null || true; fi; \
	    rm -f $(DAEMON_PID)
	-@mountpoint -q $(MNT) && $(OMNIFS) umount $(MNT)

# The mount and daemon suites run on both catalog engines, SQLite and PostgreSQL (a throwaway
# cluster the suite starts; OMNIFS_CATALOG=sqlite|postgresql runs one). TEST_WORKERS pytest
# processes (pytest-xdist) share the tests: most of a test's time is spent waiting on a server,
# a mount or a daemon, so three fill 2 cores; TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 3
test: install
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

$(LINT_STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(LINT_VENV)/bin/python || python3 -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(LINT_VENV)/bin/python -m pip install -q -c $(CONSTRAINTS) $(LINT_PACKAGES) 2>&1 | $(QUIET_PIP)
	touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(LINT_VENV)/bin/ruff check $(LINT_PATHS)
	$(MAKE) --no-print-directory typecheck

typecheck: $(LINT_STAMP)
	rm -rf $(LINT_TREE)
	mkdir -p $(LINT_TREE)/omnifs
	ln -s $(CURDIR)/omnifs/* $(LINT_TREE)/omnifs/
	for part in mountfs daemon providers policy; do ln -s $(CURDIR)/$$part $(LINT_TREE)/omnifs/; done
	cd $(LINT_TREE) && $(CURDIR)/$(LINT_VENV)/bin/mypy --config-file $(CURDIR)/pyproject.toml \
	    --cache-dir $(CURDIR)/$(LINT_VENV)/mypy-cache -p omnifs 2>&1 \
	    | sed -E 's#^omnifs/(mountfs|daemon|providers|policy)/#\1/#'

# after an upgrade the suite passed with: pin what is installed now (omnifs itself excluded)
constraints: install
	{ sed -n '/^#/p' $(CONSTRAINTS); $(PY) -m pip freeze --exclude-editable \
	    | { grep -v '^omnifs[=@ ]' || true; }; } >$(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf $(VENV) $(LINT_VENV) node_modules .omnifs-data
