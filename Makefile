# Developer shortcuts. CI runs .ci/run, which does what `make check` does on SQLite and PostgreSQL.
.PHONY: setup demo test check lint format diagram schema

setup:
	./scripts/setup

demo:
	./scripts/demo

test:
	./scripts/test

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

diagram:
	PORTAL_ENV_FILE= DJANGO_SETTINGS_MODULE=tests.settings .venv/bin/python manage.py statediagram --write

schema:
	PORTAL_ENV_FILE= DJANGO_SETTINGS_MODULE=tests.settings .venv/bin/python manage.py spectacular --file docs/openapi.yaml

check: lint
	PORTAL_ENV_FILE= DJANGO_SETTINGS_MODULE=tests.settings .venv/bin/python manage.py makemigrations --check --dry-run
	PORTAL_ENV_FILE= DJANGO_SETTINGS_MODULE=tests.settings .venv/bin/python manage.py statediagram --check
	./scripts/test
