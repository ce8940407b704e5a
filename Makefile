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

# The unit tests and the notebooks run side by side, as two pytest processes: on two
# cores that is faster than one after the other (plain `pytest` runs the same tests in
# turn). The first takes every test path in pyproject.toml except the notebooks, so a
# test path added there is not missed. The notebooks' report follows the unit tests';
# their log is kept in .pytest_cache/.
test: setup
	$(PY) -m ruff check .
	@mkdir -p .pytest_cache; \
	$(PY) -m pytest notebooks > .pytest_cache/notebooks.log 2>&1 & notebooks=$$!; \
	trap 'kill $$notebooks 2>/dev/null' INT TERM; \
	$(PY) -m pytest --ignore-glob='*.ipynb'; unit=$$?; \
	wait $$notebooks; nb=$$?; \
	echo "=== pytest notebooks (run beside the unit tests)"; cat .pytest_cache/notebooks.log; \
	[ $$unit -eq 0 ] && [ $$nb -eq 0 ]

clean:
	rm -rf $(VENV) runs figures/quick .pytest_cache
