# The two commands a newcomer runs: `make demo` and `make test`.
# Both create .venv and install everything pinned by requirements/constraints.txt.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Every pip call carries the constraints, or pip silently swaps torch.
export PIP_CONSTRAINT := $(abspath requirements/constraints.txt)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# This machine's pip.conf names index folders that may be absent: drop that noise, keep pip's exit code.
PIP_QUIET := 2>&1 | sed '/is ignored: it is neither a file nor a directory/d'
# Python caches the bytecode of what it imports, unless PYTHONDONTWRITEBYTECODE is set (some machines set it):
# then every process, every test worker and every command a test starts, compiles torch, napari and smp again
# from source (10 s of each process's 15 s to import torch and smp here).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test venv xvfb clean wheel-check

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing napari-mia and its pinned dependencies into $(VENV) (a few minutes the first time)..."
	# --no-compile: byte-compiling all of torch and napari up front costs a minute; Python compiles
	# what it imports on first use instead.
	$(PY) -m pip install -q --no-compile -e ".[testing]" $(PIP_QUIET)
	$(PY) -c "import torch, torchvision, segmentation_models_pytorch, napari_mia.cli"
	@touch $@

# napari's viewer tests need a real X server (offscreen Qt is not enough), and
# Qt's xcb plugin needs these system libraries, which slim machines lack.
XVFB_PACKAGES := xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 libxcb-render-util0 \
	libxkbcommon-x11-0 libxcb-randr0 libxcb-shape0 libxcb-xfixes0 libxcb-cursor0 libgl1 libegl1 libfontconfig1 \
	libdbus-1-3
xvfb:
	@if ! command -v Xvfb >/dev/null || ! ldconfig -p | grep -q libxcb-icccm.so.4; then \
		echo "Installing xvfb and Qt's X libraries..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(XVFB_PACKAGES) >/dev/null; fi

demo: venv xvfb
	$(VENV)/bin/napari-mia demo

# One worker per core (pytest-xdist): most tests wait on one thread of torch, Qt or a subprocess at a time.
test: venv xvfb
	$(PY) -m pytest -q -p no:cacheprovider --durations=15 -n auto $(PYTEST_ARGS)

# The package as PyPI would ship it: sdist, the wheel built from it, installed into a new environment where the
# napari manifest, the sample data and `napari-mia --help` are checked (scripts/wheel_check.py). Leaves them in dist/.
wheel-check: venv
	env -u PYTHONPATH $(PY) scripts/wheel_check.py --out dist

clean:
	rm -rf $(VENV) build dist src/*.egg-info
