# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# DDS stays on this machine, in a domain of its own per run.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell echo $$(( $$$$ % 90 + 10 )))
export MUJOCO_GL ?= osmesa
export PYTHONUNBUFFERED := 1
DEMO_SECONDS ?= 20

.PHONY: env demo test lint clean

env:
	@bash tools/setup_system.sh
	@bash tools/setup_env.sh

demo: env
	$(VENV)/bin/depthdet pipeline --demo $(DEMO_SECONDS) --demo-out out/demo

test: env
	$(PY) -m pytest -q -ra

lint: env
	$(PY) -m flake8 depthdet_ros test launch tools setup.py

clean:
	rm -rf $(VENV) build out
