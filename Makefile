# SDG Studio developer entry points. Two commands set up a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
SCENE  ?= tabletop
FRAMES ?= 24

.PHONY: install demo test test-py test-kit lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,scale]'
	touch $@

install: $(BIN)/.installed

## demo: a small labeled dataset of a built-in scene and its report in demo_out/$(SCENE) (SCENE=tabletop or grasping)
demo: install
	rm -rf demo_out/$(SCENE)
	$(BIN)/sdgstudio generate --config exts/sdgstudio.core/data/scenes/$(SCENE).toml --frames $(FRAMES) --out demo_out/$(SCENE)
	$(BIN)/sdgstudio report demo_out/$(SCENE)

## test: every test tier
test: test-py test-kit

# pytest runs without make's environment (MAKEFLAGS hands children make's jobserver file descriptors). It was
# added when pytest died mid-run in tests/test_launch.py under CI; the cause found later was a Ray driver abort
# on cancelling a task that had just finished (fixed in launch.py). Kept: children need no jobserver.
test-py: install check-chromium
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(BIN)/python -m pytest

## test-kit: our extensions in the real Kit 110.4 kernel (Python 3.12 venv cached in .kit/; skipped loudly without 3.12)
test-kit:
	$(PYTHON) tests/kit/run.py

# The report test (tests/test_report_browser.py) opens the page in Debian's headless Chromium; it is never skipped.
.PHONY: check-chromium
check-chromium:
	@command -v $${CHROMIUM:-chromium} >/dev/null || { echo "make test: the report test needs Debian's chromium:" \
		"apt-get install -y chromium (or set CHROMIUM=/path/to/chromium)" >&2; exit 1; }

lint: install
	$(BIN)/ruff check exts tests bench tools

bench: install
	$(BIN)/python bench/raster.py
	$(BIN)/python bench/writer.py
	$(BIN)/python bench/report.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf demo_out .pytest_cache
