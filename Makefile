# `make run` and `make test` do all the set-up on a fresh machine (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
STAMP := $(VENV)/.installed
ADDRPORT ?= 127.0.0.1:8000
PYTEST_ARGS ?=

.PHONY: run test test-django42 test-django-suite lint format bench system clean

$(STAMP): pyproject.toml reloader/__init__.py fcgi/__init__.py devserver/__init__.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@if pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null; then \
		$(PY) -m pip install -q -e '.[mysql]'; \
	else echo "mysqlclient not installed (needs pkg-config and libmariadb-dev): MariaDB tests will be skipped"; fi
	touch $(STAMP)

system:
	@bash scripts/system-setup.sh

run: $(STAMP)
	cd examples/mysite && $(PY) manage.py migrate --noinput -v0 && $(PY) manage.py loaddata -v0 catalog && $(PY) manage.py runserver $(ADDRPORT)

test: system $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The other supported Django LTS: the suites that run Django (devserver, runfcgi), in their own venv.
LTS_VENV ?= .venv-django42
LTS_STAMP := $(LTS_VENV)/.installed
$(LTS_STAMP): pyproject.toml
	$(PYTHON) -m venv $(LTS_VENV)
	$(LTS_VENV)/bin/python -m pip install -q --upgrade pip
	$(LTS_VENV)/bin/python -m pip install -q -e '.[test]' 'Django>=4.2,<5'
	@if pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null; then \
		$(LTS_VENV)/bin/python -m pip install -q -e '.[mysql]' 'Django>=4.2,<5'; fi
	touch $(LTS_STAMP)

test-django42: system $(LTS_STAMP)
	$(LTS_VENV)/bin/python -m pytest tests/devserver tests/fcgi $(PYTEST_ARGS)

# Django's own runserver tests (tests/admin_scripts: ManageRunserver and
# ManageRunserverMigrationWarning) against our runserver, under both LTS. Each venv's Django
# sdist is fetched once with pip (--no-binary :all:, about 10 MB) into .cache/django-sdist/.
DJANGO_SUITE := tests/devserver/test_django_suite.py
test-django-suite: $(STAMP) $(LTS_STAMP)
	$(PY) -m pytest $(DJANGO_SUITE) $(PYTEST_ARGS)
	$(LTS_VENV)/bin/python -m pytest $(DJANGO_SUITE) $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy reloader fcgi

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: system $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(LTS_VENV) .pytest_cache .mypy_cache .ruff_cache .cache
