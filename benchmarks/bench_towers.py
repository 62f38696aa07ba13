"""Image towers from timm and open_clip against torchvision's ResNet-50: images/s of a
training step and of inference (PyTorch eager and the exported graph through ONNX
Runtime), each as mia builds it (the tower, its global and stripe heads) at one size.

``timm:resnet50`` is the same network as torchvision's ``resnet50`` (each as its library
builds it), so its ratio to the first row is what the timm adapter costs; the ViTs'
ratios say what a small ViT and CLIP's ViT-B/16 cost against the paper's trunk.  Every
measurement is timed in rounds (each tower's training step, eager inference and ONNX
Runtime inference once a round; the median of the rounds), so that a neighbour's load on
a shared machine falls on all of them alike; the load average is recorded beside the
table.  Weights are random: speed does not depend on them, and nothing is downloaded.

    python benchmarks/bench_towers.py            # 384x128, batch 8, ResNet-50 / timm:resnet50 / ViT-S/16 / CLIP ViT-B/16
    python benchmarks/bench_towers.py --quick    # 128x64, batch 4, ResNet-18 / timm:resnet18 / ViT-Ti/16 / CLIP ViT-B/16
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from _common import report
from mia.core.modeling.model import encoder_factory, factory_options
from mia.export.backends import write_onnx
from mia.export.graphs import GraphIO
from mia.export.runtime import make_session

IO = GraphIO(("images",), ("image_global", "image_parts"), {"images": {0: "batch"}})


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", default="resnet50,timm:resnet50,timm:vit_small_patch16_224,clip:ViT-B-16",
                        help="comma-separated; the first is the baseline of the ratios")
    parser.add_argument("--image-size", default="384x128")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-parts", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--exporter", default="dynamo", choices=["dynamo", "torchscript"])
    parser.add_argument("--quick", action="store_true", help="ResNet-18 pair and ViT-Ti at 128x64, batch 4, 2 rounds")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.encoders = "resnet18,timm:resnet18,timm:vit_tiny_patch16_224,clip:ViT-B-16"
        args.image_size, args.batch_size, args.rounds, args.num_parts, args.exporter = "128x64", 4, 2, 4, "torchscript"
    return args


def build(name: str, size: tuple[int, int], num_parts: int) -> torch.nn.Module:
    factory = encoder_factory("image-encoder", name)
    return factory(512, num_parts, **factory_options(factory, image_size=size))


def training_step(encoder: torch.nn.Module, images: torch.Tensor):
    """Forward, backward and an SGD step of the tower and its heads in training mode (a
    stand-in loss on both outputs: what the losses cost beyond it does not depend on the
    tower)."""
    optimizer = torch.optim.SGD(encoder.parameters(), lr=1e-4)

    def step():
        encoder.train()
        global_, parts = encoder(images)
        (global_.float().pow(2).mean() + parts.float().pow(2).mean()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        encoder.eval()

    return step


def inference(encoder: torch.nn.Module, images: torch.Tensor):
    def run():
        with torch.no_grad():
            return encoder(images)

    return run


def rounds(functions: dict, count: int) -> dict:
    """Median seconds per call of each function, timed once per round after one warm-up call each."""
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(count):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main():
    args = parse_args()
    height, width = map(int, args.image_size.split("x"))
    names = args.encoders.split(",")
    batch = torch.randn(args.batch_size, 3, height, width, generator=torch.Generator().manual_seed(0))
    encoders = {name: build(name, (height, width), args.num_parts).eval() for name in names}
    functions, feeds = {}, {"images": batch.numpy()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, encoder in encoders.items():
            path = Path(tmp) / f"{name.replace(':', '-')}.onnx"
            write_onnx(encoder, (batch[:2],), path, IO, 18, args.exporter)
            session = make_session(path, "cpu")
            functions[("ort", name)] = lambda session=session: session.run(None, feeds)
    for name, encoder in encoders.items():
        functions[("eager", name)] = inference(encoder, batch)
        functions[("train", name)] = training_step(encoder, batch)
    load = [round(os.getloadavg()[0], 2)]
    seconds = rounds(functions, args.rounds)
    load.append(round(os.getloadavg()[0], 2))
    train, eager, ort = ({name: seconds[(kind, name)] for name in names} for kind in ("train", "eager", "ort"))
    base = names[0]
    rows = []
    for name, encoder in encoders.items():
        rows.append([name, sum(p.numel() for p in encoder.parameters()) / 1e6,
                     args.batch_size / train[name], args.batch_size / eager[name], args.batch_size / ort[name],
                     eager[name] / ort[name], train[base] / train[name], eager[base] / eager[name]])
    report("bench_towers", torch.device("cpu"),
           ["image encoder", "parameters (M)", "train images/s", "infer images/s (PyTorch)",
            "infer images/s (ONNX Runtime)", "ONNX Runtime / PyTorch", f"train vs {base}", f"infer vs {base}"], rows,
           {"settings": f"{height}x{width}, batch {args.batch_size}, {args.num_parts} stripes, embed 512, fp32, "
                        f"median of {args.rounds} rounds",
            "exporter": args.exporter, "threads": torch.get_num_threads(),
            "load average (1 min) before and after": load,
            "weights": "random (speed does not depend on them; nothing downloaded)"}, args.out)


if __name__ == "__main__":
    main()
