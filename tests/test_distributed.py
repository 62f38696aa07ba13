"""Two training processes on CPU (gloo) through torchrun, end to end, with --resume."""

import json
import os
import subprocess
import sys

import torch

from test_cli_train import TINY, run


def torchrun(*args, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "mia.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def test_two_process_training_logs_once_writes_once_and_resumes(tiny_synth, tmp_path):
    out = tmp_path / "ddp"
    first = torchrun("train", "--data", tiny_synth, "--out", out, "--epochs", 2, *TINY, "--align", "global,fine",
                     "--stop-after", 1, "--frozen-trunk-epochs", 1)  # the model is wrapped again once frozen
    assert first.returncode == 0, first.stderr[-3000:]
    assert "2 processes (DDP)" in first.stderr
    assert first.stderr.count("epoch 1/2 [global+fine]") == 1  # only rank 0 logs
    second = torchrun("train", "--out", out, "--resume", "--workers", 0, "--quiet")
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("best epoch") == 1
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2]
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 2
    # features gathered from both ranks give exactly the single-process evaluation
    single = run("eval", "--checkpoint", out / "last.pt", "--split", "val", "--json", "--workers", 0, "--device", "cpu")
    metrics = json.loads(single.output.strip().splitlines()[-1])
    one_query = 100 / metrics["queries"]  # what one query's outcome moves a metric by, at most
    for key in ("R1", "R5", "R10", "mAP", "mINP"):
        # per-rank batches round differently from one process's: a near-tie may flip, for one query, no more
        assert abs(metrics[key] - history[-1][key]) <= one_query, key
