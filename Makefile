# Two commands for a newcomer (see README):
#   make demo   install, migrate, load the demo trial, serve on http://127.0.0.1:8000
#   make test   lint, architecture contracts, type checks of the rule modules, the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000
# Test processes (pytest-xdist): one per CPU of the 2-CPU CI machine; each has its own test
# database and Redis database (tests/conftest.py). TEST_PROCESSES=0 runs in this process.
TEST_PROCESSES ?= 2

.PHONY: install demo test lint worker

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Trialdesk needs Python 3.11 (set PYTHON=/path/to/python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py runserver $(HOST)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile --durations=25

# With REDIS_URL set, run a worker beside `make demo` (docker compose does both).
worker: install
	$(BIN)/celery -A config worker --loglevel=INFO
