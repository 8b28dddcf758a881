# Two commands set everything up: `make demo` and `make test`. Each creates and
# fills .venv on first use, so a fresh machine needs nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint lab bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)  ## the main job on the bundled sample fleet, no credentials needed
	$(BIN)/patchframe report --sample

test: $(STAMP) lint  ## lint, type-check, then every test, doctest and notebook
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check patchframe tests benchmarks notebooks
	$(BIN)/ruff format --check patchframe tests benchmarks notebooks
	$(BIN)/mypy patchframe

lab: $(STAMP)  ## JupyterLab on notebooks/ with the project's environment
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)  ## speed and memory ratios against the naive approach
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) patchframe-report .pytest_cache .mypy_cache .ruff_cache
