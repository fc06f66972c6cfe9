# make demo: everything from a fresh clone to a running demo; make test: everything to a full test run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# the accessibility test's checker (axe-core, from the npm registry), fetched once into a git-ignored folder
AXE := var/node/node_modules/axe-core/axe.min.js
export ACCOUNTDESK_DATABASE_URL ?= sqlite:///var/accountdesk.db

.PHONY: demo test bench install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(AXE):
	npm install --prefix var/node --no-save --no-package-lock --no-audit --no-fund axe-core@4

install: $(BIN)/.installed $(AXE)

demo: install
	$(BIN)/accountdesk demo --host 127.0.0.1 --port 8000

test: install
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var
