# SDG Studio developer entry points. Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
SCENE  ?= tabletop
FRAMES ?= 24

.PHONY: install demo test test-py lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,scale]'
	touch $@

install: $(BIN)/.installed

## demo: a small labeled dataset of a built-in scene in demo_out/$(SCENE) (SCENE=tabletop by default)
demo: install
	rm -rf demo_out/$(SCENE)
	$(BIN)/sdgstudio generate --config exts/sdgstudio.core/data/scenes/$(SCENE).toml --frames $(FRAMES) --out demo_out/$(SCENE)

## test: every test tier
test: test-py

test-py: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check exts tests bench tools

bench: install
	$(BIN)/python bench/raster.py
	$(BIN)/python bench/writer.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf demo_out .pytest_cache
