# Two commands after cloning:
#   make notebooks   set up, then run every notebook in order and regenerate figures/
#   make test        set up, then lint and run the tests (unit tests + notebooks in quick mode)

VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup notebooks test clean

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -e .
	touch $@

setup: $(VENV)/.installed

notebooks: setup
	$(PY) -m helpers.notebooks

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest

clean:
	rm -rf $(VENV) runs figures/quick .pytest_cache
