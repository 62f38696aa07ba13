"""Images/s that the training data pipeline delivers (JPEG decode + resize + augment +
collate) from synthpedes files, for several worker counts, against the model's step rate.

The model rate comes from ``--model-rate`` or from the last ``bench_train`` JSON for this
device, whose image size and batch are then used here too, so both sides measure the same
configuration; the target is a pipeline that outruns the model by 1.5x with the machine's cores.

    python benchmarks/bench_loader.py [--workers 0,2,4,8] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from _common import report, result_path
from mia.core.data.loaders import EpochSampler, ImageReader, PairDataset, build_text_table, make_loader, person_labels
from mia.core.runtime.policy import resolve_device
from mia.core.data.records import load_dataset
from mia.core.data.text_arrays import TextSettings
from mia.core.data.tokenizer import Vocabulary


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = os.cpu_count() or 1
    parser.add_argument("--data", default="synthpedes")
    parser.add_argument("--image-size", help="default: bench_train's, else 384x128")
    parser.add_argument("--batch-size", type=int, help="default: bench_train's, else 128")
    parser.add_argument("--workers", default=",".join(str(w) for w in sorted({0, max(1, cores // 2), cores})))
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--model-rate", type=float, help="model images/s to compare with")
    parser.add_argument("--train-json", help="bench_train result to take the model rate from "
                                             "(default benchmarks/results/bench_train-<device>.json)")
    parser.add_argument("--device", default="auto", help="whose bench_train result to compare with")
    parser.add_argument("--quick", action="store_true", help="10 batches")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.batches = 10
    return args


def model_step(args, device) -> tuple[float | None, str, int]:
    """(model images/s, image size, batch): from the options, else from bench_train's JSON."""
    path = Path(args.train_json) if args.train_json else result_path("bench_train", device, None)
    row = json.loads(path.read_text())["rows"][0] if path.exists() else None
    rate = args.model_rate or (row[3] if row else None)
    size = args.image_size or (row[1] if row else "384x128")
    batch = args.batch_size or (row[2] if row else 128)
    return rate, size, batch


def pipeline(args, image_size: str):
    records = load_dataset(args.data).split("train")
    vocab = Vocabulary.build(c for r in records for c in r.captions)
    table = build_text_table(records, vocab, TextSettings(), None)
    labels, _ = person_labels(records)
    size = tuple(map(int, image_size.split("x")))
    return PairDataset(records, table, labels, ImageReader(size, seed=0, train=True))


def delivered_rate(dataset, workers: int, batch_size: int, batches: int) -> float:
    loader = make_loader(dataset, batch_size, workers, EpochSampler(len(dataset), 0), dataset.collate,
                         drop_last=True, pin_memory=torch.cuda.is_available())
    iterator = iter(loader)
    next(iterator)  # start-up (worker spawn) is paid once per run, not per batch
    start, images = time.perf_counter(), 0
    for _ in range(batches):
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        images += len(batch[0])
    return images / (time.perf_counter() - start)


def main():
    args = parse_args()
    device = resolve_device(args.device)
    target, image_size, batch_size = model_step(args, device)
    dataset = pipeline(args, image_size)
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        rate = delivered_rate(dataset, workers, batch_size, args.batches)
        rows.append([workers, image_size, batch_size, rate, rate / target if target else float("nan")])
    report("bench_loader", device, ["workers", "image size", "batch", "images/s", "x model step rate"], rows,
           {"model step rate (images/s)": target if target else "unknown: run bench_train first or pass --model-rate",
            "cores": os.cpu_count(), "decoded from": f"{args.data} JPEGs"}, args.out)


if __name__ == "__main__":
    main()
