# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv and install everything from nothing (torch from this machine's disk).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the built-in data set: train on synthpedes (generated on first use),
# keep the best epoch by validation R@1, then evaluate it on the test split.
# runs/demo is the demo's own scratch directory and is remade on every run.
DEMO_OPTIONS := --data synthpedes --align global --image-encoder resnet18 --image-size 192x64 --epochs 6
demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/mia train $(DEMO_OPTIONS) --out runs/demo
	$(BIN)/mia eval --checkpoint runs/demo/best.pt --split test

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
