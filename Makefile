# The two commands of README.md's quick start:
#   make demo   set up .venv (first time ~20 min: mmcv compiles) and run the main job
#   make lint   set up .venv and check the style (setup.cfg, .clang-format);
#               CI runs it first
#   make test   set up .venv and run the test suite, then the operator and
#               layer tests on the lowest supported torch alone
#               (.venv-torch-min) and the whole suite again on the lowest
#               supported stack (.venv-stack-min)
VENV ?= .venv
PYTHON := $(VENV)/bin/python
TORCH_MIN_VENV ?= .venv-torch-min
STACK_MIN_VENV ?= .venv-stack-min

.PHONY: env env-torch-min env-stack-min demo lint test test-torch-min \
	test-stack-min

env:
	MMADC_VENV=$(VENV) tools/install/setup_env.sh

env-torch-min:
	MMADC_TORCH_MIN_VENV=$(abspath $(TORCH_MIN_VENV)) tools/install/setup_torch_min_env.sh

# The same installer with requirements/stack_min.txt (torch 2.1, numpy 1.26,
# mmcv 2.1.0 built against that torch); mmadc as a copy, so that its native
# kernel is built for torch 2.1 without touching .venv's.
env-stack-min:
	MMADC_VENV=$(abspath $(STACK_MIN_VENV)) MMADC_STACK=requirements/stack_min.txt \
	  MMADC_EDITABLE=0 tools/install/setup_env.sh

demo: env
	$(PYTHON) tools/run_demo.py

# The style settings are setup.cfg's and .clang-format's; `isort`, `yapf -i`
# and `clang-format -i` fix findings.
LINT_PATHS := mmadc tools tests configs setup.py
lint: env
	$(PYTHON) -m flake8 $(LINT_PATHS)
	$(PYTHON) -m isort --check-only --diff $(LINT_PATHS)
	$(PYTHON) -m yapf --diff --recursive $(LINT_PATHS)
	$(VENV)/bin/clang-format --dry-run --Werror mmadc/ops/csrc/*.cpp \
	  mmadc/ops/csrc/*.h

test: env env-torch-min env-stack-min
	$(PYTHON) -m pytest tests
	$(MAKE) test-torch-min
	$(MAKE) test-stack-min

# From tests/, so that the environment's installed mmadc is imported (its
# kernel built against that torch), not the source tree's.
test-torch-min: env-torch-min
	cd tests && $(abspath $(TORCH_MIN_VENV))/bin/python -m pytest test_ops

# The whole suite again on the lowest stack; what needs a newer torch
# (compile, export, the ONNX export, Triton) skips, naming the version.
test-stack-min: env-stack-min
	cd tests && $(abspath $(STACK_MIN_VENV))/bin/python -m pytest .
