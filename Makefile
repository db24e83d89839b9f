# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install init run console test lint bench lock clean

# Pinned versions from the lock files (the Dockerfile installs requirements.lock the same way);
# the project itself from the source tree on top. `make lock` refreshes the pins.
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

init: install
	$(BIN)/resobot init

# With TELEGRAM_BOT_TOKEN set: polls Telegram. Without: the offline console chat.
run: init
	$(BIN)/resobot run

console: init
	$(BIN)/resobot console

lint: install
	$(BIN)/ruff check .

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The newest versions pyproject.toml allows, resolved in a throwaway virtualenv, pinned into
# requirements.lock (runtime) and requirements-dev.lock (tests, lint); then reinstalled here, and
# reporting_forms/workdays_lv.json written from the holidays version now installed.
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet -e '.[dev]'
	$(LOCK_VENV)/bin/python tools/lock.py
	rm -rf $(LOCK_VENV)
	$(MAKE) install
	$(BIN)/python -m reporting_forms.workdays

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis *.egg-info
