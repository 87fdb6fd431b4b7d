# One-word commands. `make test` builds .venv from scratch when missing (regular registry builds of torch
# and torchvision: the CPU-only torch wheel cannot import torchvision), then runs ruff and the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.omniad-installed

.PHONY: install test lab demo notebooks clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[notebooks,dev]"
	@touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# `make demo` (owned by the notebooks part): notebook 00 through papermill into runs/demo/, then the table.
DEMO_DIR := runs/demo

demo: $(STAMP)
	@mkdir -p $(DEMO_DIR)
	$(VENV)/bin/papermill --cwd . notebooks/00_quickstart.ipynb $(DEMO_DIR)/00_quickstart.ipynb -p output_dir $(DEMO_DIR)
	@$(PY) -c "import pandas as pd; print(pd.read_csv('$(DEMO_DIR)/run/metrics.csv', index_col=0).to_string())"
	@echo "executed notebook: $(DEMO_DIR)/00_quickstart.ipynb  heatmaps: $(DEMO_DIR)/heatmaps.png  run: $(DEMO_DIR)/run"

# Rebuild the notebooks from notebooks/cells/ and execute each with its defaults, outputs committed.
notebooks: $(STAMP)
	$(PY) notebooks/build_notebooks.py
	rm -rf notebooks/runs  # fresh default runs: with resume="auto", 00/03 would only re-evaluate old ones
	cd notebooks && for nb in 0*.ipynb; do ../$(VENV)/bin/papermill --log-level WARNING $$nb $$nb || exit 1; done

# --allow-root only when run as root (containers, Colab-like machines); Jupyter refuses root without it.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean-venv:
	rm -rf $(VENV)
