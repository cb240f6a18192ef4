# The two commands of README.md's quick start:
#   make demo   set up .venv (first time ~20 min: mmcv compiles) and run the main job
#   make lint   set up .venv and check the style (setup.cfg, .clang-format);
#               CI runs it first
#   make test   set up .venv and run the test suite, then the operator and
#               layer tests again on the lowest supported torch (.venv-torch-min)
VENV ?= .venv
PYTHON := $(VENV)/bin/python
TORCH_MIN_VENV ?= .venv-torch-min

.PHONY: env env-torch-min demo lint test test-torch-min

env:
	MMADC_VENV=$(VENV) tools/install/setup_env.sh

env-torch-min:
	MMADC_TORCH_MIN_VENV=$(abspath $(TORCH_MIN_VENV)) tools/install/setup_torch_min_env.sh

demo: env
	$(PYTHON) tools/run_demo.py

# The style settings are setup.cfg's and .clang-format's; `isort`, `yapf -i`
# and `clang-format -i` fix findings.
LINT_PATHS := mmadc tools tests configs setup.py
lint: env
	$(PYTHON) -m flake8 $(LINT_PATHS)
	$(PYTHON) -m isort --check-only --diff $(LINT_PATHS)
	$(PYTHON) -m yapf --diff --recursive $(LINT_PATHS)
	$(VENV)/bin/clang-format --dry-run --Werror mmadc/ops/csrc/*.cpp

test: env env-torch-min
	$(PYTHON) -m pytest tests
	$(MAKE) test-torch-min

# From tests/, so that the environment's installed mmadc is imported (its
# kernel built against that torch), not the source tree's.
test-torch-min: env-torch-min
	cd tests && $(abspath $(TORCH_MIN_VENV))/bin/python -m pytest test_ops
