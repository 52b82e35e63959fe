# Two commands on a fresh machine: `make demo` and `make test`; both create and fill .venv when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: venv demo test lint format docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cpu,serve,airflow,s3,dev,docs]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/coarchive demo --out demo_out
	@echo "open demo_out/report.html in a browser"

test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal tests   # idle workers take queued tests from busy ones

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/deptry .   # every imported package declared, none declared in vain
	$(VENV)/bin/lint-imports   # the layers: core <- pool stages <- archives, segment <- application; no toy in production

# The docs site (mkdocs-material): strict, so a broken link or a missing page fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict --quiet

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf demo_out .pytest_cache build/site
