# The two commands of README.md's quick start:
#   make demo   set up .venv (first time ~20 min: mmcv compiles) and run the main job
#   make test   set up .venv and run the test suite
VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: env demo test

env:
	MMADC_VENV=$(VENV) tools/install/setup_env.sh

demo: env
	$(PYTHON) tools/run_demo.py

test: env
	$(PYTHON) -m pytest tests
