# prreid: the two commands a newcomer runs.
#   make book   create .venv, install, generate SynthVeh, run every chapter (papermill), build the HTML book
#   make test   create .venv if needed, install, run pytest (the full suite)
# Faster: make test-unit  the unit tests only (pytest -m "not slow": no notebooks, book,
#   browser, trainings in subprocesses or detector training)
# Checks: make lint  ruff (rules and formatting);  make typecheck  mypy on prreid_lib
# Optional: make book PROFILE=paper-check  every chapter at the paper's sizes on 2 CPU cores
#           make book PROFILE=vehicleid DATA_ROOT=/data/reid  (real data; see README)
# Course: make handout  the chapters as student notebooks in handout/ (or HANDOUT=DIR)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
MATHJAX := book/_static/mathjax/tex-chtml.js
PROFILE ?= quick
DATA_ROOT ?=
SEED ?= 0
DATA_SEED ?= 0
DEVICE ?= auto
HANDOUT ?= handout

.PHONY: book test test-unit install mathjax chromium lint typecheck clean-book handout

book: install mathjax
	$(VENV)/bin/prreid book --profile $(PROFILE) --seed $(SEED) --device $(DEVICE) $(if $(DATA_ROOT),--data-root $(DATA_ROOT),--data-seed $(DATA_SEED))

test: install mathjax chromium
	$(PY) -m pytest

test-unit: install
	$(PY) -m pytest -m "not slow"

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[book,dev,export,tensorboard]'
	$(PY) -m pip install --quiet --no-deps fastreid==1.4.0  # evaluator used as a test reference only
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (prreid)" >/dev/null
# `jupyter lab` of this venv also starts as root (a container's user); others see no change
	mkdir -p $(VENV)/etc/jupyter
	echo '{"ServerApp": {"allow_root": true}}' > $(VENV)/etc/jupyter/jupyter_server_config.json
	touch $@

# MathJax 3 is served from the book itself (no CDN): taken from the npm package.
mathjax: $(MATHJAX)

$(MATHJAX):
	npm install --silent --no-save --no-audit --no-fund --prefix .cache/npm mathjax@3
	mkdir -p book/_static/mathjax
	cp -r .cache/npm/node_modules/mathjax/es5/. book/_static/mathjax/

# The browser test drives Debian's chromium (never a downloaded browser).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Settings in pyproject.toml ([tool.mypy]).
typecheck: install
	$(VENV)/bin/mypy

# Student notebooks: no solutions, no outputs, a README (see `prreid handout --help`).
handout: install
	$(VENV)/bin/prreid handout --out $(HANDOUT)

clean-book:
	rm -rf _build book/_generated
