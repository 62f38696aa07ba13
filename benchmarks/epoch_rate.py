"""Real training epochs against ``bench_train.py``'s step rate at the same settings.

bench_train times the trainer's step on one random batch held in memory; a real epoch also
loads and augments images, varies caption lengths, schedules the learning rate and ends
with a partial pass of the loader. This script trains a synthpedes of CUHK-PEDES's size
(11,003 training identities, 3 images each: 33,009 images) with ``mia train`` for a few
epochs, then runs bench_train with the same encoder, alignments, input size, batch,
identities (the ID loss's classes) and compilation, and reports each epoch's images/s, the
seconds it spent blocked on the loader (``data_seconds`` of metrics.jsonl) and the ratio
of the two rates (target >= 0.9x on a GPU). The first epoch includes compilation and
loader start-up; the ratio uses the later ones. The rate of an epoch without its loader
wait says how much of a gap the loader explains.

    python benchmarks/epoch_rate.py --device cuda --compile reduce-overhead   # a GPU machine
    python benchmarks/epoch_rate.py --quick                                   # CPU smoke run

The data set is drawn once (one process per core) into --synth-dir and reused.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import report, run_mia, run_python
from bench_train import CUHK_PEDES_TRAIN_IDS
from mia.core.training.outputs import RUN_FILES
from mia.core.runtime.policy import resolve_device
from mia.plugins.datasets.synthpedes import SynthConfig, generate_synthpedes


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-ids", type=int, default=CUHK_PEDES_TRAIN_IDS)
    parser.add_argument("--images-per-id", type=int, default=3)
    parser.add_argument("--synth-dir", default=None, help="where the data set is drawn (default: runs/epoch-rate/synthpedes-N)")
    parser.add_argument("--out", default="runs/epoch-rate/train", help="the training run (started afresh)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-encoder", default="resnet50")
    parser.add_argument("--align", default="global,part,fine")
    parser.add_argument("--image-size", default="384x128")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", default=None, help="torch.compile mode for both (e.g. reduce-overhead)")
    parser.add_argument("--workers", type=int, default=None, help="data workers of mia train (default: its policy)")
    parser.add_argument("--quick", action="store_true", help="100 identities, resnet18 at 128x48, batch 16, 2 epochs")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.train_ids, args.image_encoder, args.image_size, args.batch_size, args.epochs = 100, "resnet18", "128x48", 16, 2
    return args


def dataset(args) -> Path:
    """The synthpedes to train on: a few val people (each epoch is evaluated), no test."""
    directory = Path(args.synth_dir or f"runs/epoch-rate/synthpedes-{args.train_ids}")
    if not (directory / "reid_raw.json").is_file():
        config = SynthConfig(ids=args.train_ids + 101, images_per_id=args.images_per_id, val_ids=100, test_ids=1)
        print(f"drawing {config.ids * config.images_per_id} images into {directory}", file=sys.stderr, flush=True)
        generate_synthpedes(directory, config, workers=None)
    return directory


def train(args, data: Path) -> list[dict]:
    options = ["--data", data, "--out", args.out, "--image-encoder", args.image_encoder, "--align", args.align,
               "--image-size", args.image_size, "--batch-size", args.batch_size, "--epochs", args.epochs,
               "--device", args.device, "--quiet"]
    options += ["--compile", args.compile] if args.compile else []
    options += ["--workers", args.workers] if args.workers is not None else []
    for name in RUN_FILES:  # a fresh run each time: a resumed one would time only its remaining epochs
        (Path(args.out) / name).unlink(missing_ok=True)
    run_mia("train", *options, show=True)
    return [json.loads(line) for line in (Path(args.out) / "metrics.jsonl").read_text().splitlines()]


def bench_train_rate(args) -> float:
    """bench_train's mia step rate at the same settings, in its own process."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "bench_train.json"
        command = [Path(__file__).with_name("bench_train.py"), "--image-encoder", args.image_encoder, "--align",
                   args.align, "--image-size", args.image_size, "--batch-size", args.batch_size, "--device", args.device,
                   "--classes", args.train_ids, "--out", out]
        command += ["--compile", args.compile] if args.compile else []
        if args.quick:
            command += ["--steps", 3, "--warmup", 1]
        run_python(*command)
        return json.loads(out.read_text())["rows"][0][3]


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    history = train(args, dataset(args))
    bench = bench_train_rate(args)
    rows, rates = [], []
    for record in history:
        seconds, waiting, rate = record["train_seconds"], record["data_seconds"], record["images_per_second"]
        rates.append((rate, rate * seconds / (seconds - waiting)))
        rows.append([record["epoch"], round(seconds, 1), round(waiting, 1), f"{100 * waiting / seconds:.0f}%",
                     *map(round, rates[-1])])
    later = rates[1:] or rates  # the first epoch compiles and starts the loader
    real = statistics.median(rate for rate, _ in later)
    without_wait = statistics.median(rate for _, rate in later)
    report("epoch_rate", device, ["epoch", "train s", "loader wait s", "wait share", "images/s", "images/s without wait"],
           rows, {"settings": f"{args.image_encoder} {args.image_size} [{args.align}] batch {args.batch_size}, "
                              f"compile {args.compile or 'no'}, {args.train_ids} training identities",
                  "bench_train images/s": round(bench), "ratio (real epochs / bench_train)": round(real / bench, 3),
                  "ratio without loader wait": round(without_wait / bench, 3)},
           args.json_out)


if __name__ == "__main__":
    main()
