"""Image and text encoder throughput: PyTorch eager against ONNX Runtime, same batch,
same device, same (random-init) weights; prints the ratio and the provider ORT gave.

    python benchmarks/bench_infer.py [--device cuda] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from _common import report, time_it
from mia.core.runtime.policy import autocast, resolve_device
from mia.core.modeling.model import ModelSpec, create_model
from mia.export.backends import write_onnx
from mia.export.graphs import build_graphs, example_inputs, graph_io
from mia.export.runtime import make_session


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-encoder", default="resnet50")
    parser.add_argument("--image-size", default="384x128")
    parser.add_argument("--align", default="global,part,fine")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--exporter", default="dynamo", choices=["dynamo", "torchscript"])
    parser.add_argument("--quick", action="store_true", help="resnet18 at 128x48, batch 16")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.image_encoder, args.image_size, args.batch_size, args.repeats = "resnet18", "128x48", 16, 3
    return args


def main():
    args = parse_args()
    device = resolve_device(args.device)
    height, width = map(int, args.image_size.split("x"))
    model = create_model(ModelSpec(image_encoder=args.image_encoder, alignments=args.align.split(","),
                                   image_size=(height, width), vocab_size=5000, num_classes=2)).eval()
    graphs, ios = build_graphs(model), graph_io(model)
    batch = example_inputs(model, args.batch_size, args.words, 6)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for name in ("image_encoder", "text_encoder"):  # export on the CPU before anything moves
            example = example_inputs(model, 2, 7, 3)
            path = Path(tmp) / f"{name}.onnx"
            write_onnx(graphs[name], tuple(example[n] for n in ios[name].inputs), path, ios[name], 18, args.exporter)
            sessions[name] = make_session(path, device.type if device.type == "cuda" else "cpu")
        model.to(device)
        if device.type == "cuda":
            model.image_encoder.to(memory_format=torch.channels_last)
        for name, session in sessions.items():
            feeds = {i.name: batch[i.name].numpy() for i in session.get_inputs()}
            graph = graphs[name]
            inputs = tuple(batch[n].to(device) for n in ios[name].inputs)

            def eager():
                with torch.no_grad(), autocast(device):
                    return graph(*inputs)

            torch_seconds = time_it(eager, device, 2, args.repeats)
            ort_seconds = time_it(lambda: session.run(None, feeds), torch.device("cpu"), 2, args.repeats)
            items = args.batch_size if name == "text_encoder" else args.batch_size + 1
            rows.append([name, items, items / torch_seconds, items / ort_seconds, torch_seconds / ort_seconds,
                         session.get_providers()[0]])
    report("bench_infer", device, ["graph", "batch", "PyTorch eager items/s", "ONNX Runtime items/s",
                                   "ratio (ORT / eager)", "ORT provider"], rows,
           {"model": f"{args.image_encoder} {args.image_size} + bigru [{args.align}]",
            "precision": "eager bf16 autocast vs ORT fp32" if device.type == "cuda" else "fp32 both",
            "exporter": args.exporter}, args.out)


if __name__ == "__main__":
    main()
