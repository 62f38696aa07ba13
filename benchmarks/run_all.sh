#!/usr/bin/env bash
# All four benchmarks in one go, each printing its table and writing JSON and a log under
# $RESULTS (default benchmarks/results). Arguments go to every script:
#   bash benchmarks/run_all.sh --quick                            # CPU smoke run, a few minutes
#   DEVICE=cuda RESULTS=$OUT bash benchmarks/run_all.sh           # a lent GPU machine, one call
# On a GPU machine whose image already holds torch, torchvision, onnx, onnxruntime, click and
# pluggy (see the README's Performance section), install mia first, offline:
#   python3 -m pip install -q --no-deps --no-build-isolation --no-index -e .
# EXPORTER=torchscript for bench_infer where torch is older than 2.14 (the dynamo exporter
# of torch 2.11 fixed the caption-length axis of the text encoder).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
device=${DEVICE:-$("$python" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}
results=${RESULTS:-benchmarks/results}
mkdir -p "$results"
for bench in train loader score infer; do
  extra=()
  [ "$bench" = loader ] && extra=(--train-json "$results/bench_train-$device.json")
  [ "$bench" = infer ] && extra=(--exporter "${EXPORTER:-dynamo}")
  "$python" "benchmarks/bench_$bench.py" --device "$device" "$@" "${extra[@]}" \
    --out "$results/bench_$bench-$device.json" 2>&1 | tee "$results/bench_$bench-$device.log"
done
