# 易贷兴 — the two commands: `make run` (embedded: SQLite, in-process tasks, demo data)
# and `make test` (the whole suite on SQLite, then on PostgreSQL + Redis).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
PORT ?= 5000
HOST ?= 127.0.0.1
TEST_DB ?= ydx_test
TEST_PG ?= postgresql+psycopg://postgres@127.0.0.1:5432/$(TEST_DB)
TEST_REDIS ?= redis://127.0.0.1:6379/15

.PHONY: translations run setup test test-sqlite test-postgres serve worker beat migrate deploy bench lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# English catalog of the user-facing texts (Chinese is the source language).
app/translations/en/LC_MESSAGES/messages.mo: app/translations/en/LC_MESSAGES/messages.po $(VENV)/.installed
	$(VENV)/bin/pybabel compile -d app/translations -f

translations: app/translations/en/LC_MESSAGES/messages.mo

setup: $(VENV)/.installed translations
	$(FLASK) bootstrap

run: setup
	$(FLASK) run --host $(HOST) --port $(PORT)

test: lint test-sqlite test-postgres

test-sqlite: $(VENV)/.installed translations
	$(PY) -m pytest -q -p no:cacheprovider

test-postgres: $(VENV)/.installed translations
	psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS $(TEST_DB) WITH (FORCE)" -c "CREATE DATABASE $(TEST_DB)"
	YDX_TEST_DATABASE_URL=$(TEST_PG) YDX_TEST_REDIS_URL=$(TEST_REDIS) $(PY) -m pytest -q -p no:cacheprovider

# Production mode: DATABASE_URL, REDIS_URL and SECRET_KEY come from the environment.
serve: $(VENV)/.installed
	$(VENV)/bin/gunicorn --bind 0.0.0.0:$(PORT) --workers $${WEB_CONCURRENCY:-4} wsgi:app

worker: $(VENV)/.installed
	$(VENV)/bin/celery -A workers.worker worker --loglevel INFO

beat: $(VENV)/.installed
	mkdir -p instance && $(VENV)/bin/celery -A workers.worker beat --loglevel INFO --schedule instance/celerybeat-schedule

migrate: $(VENV)/.installed
	$(FLASK) db upgrade

deploy: $(VENV)/.installed
	$(FLASK) process deploy

bench: $(VENV)/.installed
	$(PY) bench/lifecycle.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check app workers tests bench

clean:
	rm -rf $(VENV) instance
