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
	$(BIN)/pip install --quiet -e '.[test,hf,serve]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the built-in data set: train MIA (global + part + fine alignments) on
# synthpedes (generated on first use), keep the best epoch by validation R@1, evaluate it on
# the test split, export it to ONNX with the recall check, and search the test crops by a
# description with ONNX Runtime only. runs/demo is the demo's own scratch directory and is
# remade on every run.
DEMO_TRAIN := --data synthpedes --align global,part,fine --image-encoder resnet18 --image-size 192x64 --epochs 6
DEMO_QUERY := "a man in a brown coat and green trousers carrying a purple backpack"
demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/mia train $(DEMO_TRAIN) --out runs/demo
	$(BIN)/mia eval --checkpoint runs/demo/best.pt --split test --html runs/demo/test-results.html
	$(BIN)/mia export onnx --checkpoint runs/demo/best.pt --out runs/demo/exported --check-data synthpedes
	$(BIN)/mia search $(DEMO_QUERY) --model runs/demo/exported --top-k 5 --html runs/demo/search.html \
		--gallery "$$($(BIN)/mia data path synthpedes --split test)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
