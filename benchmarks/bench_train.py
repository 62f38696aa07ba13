"""Training-step throughput of a mia model against its bare torchvision trunk
(ResNet-50 by default) with a plain classification loss.

Both run in this process, at the same batch size and precision (bf16 autocast and
channels_last on CUDA, fp32 on CPU), on random inputs of the real shapes handed over as the
loader hands them (uint8 pixels in pinned host memory), so the ratio isolates what mia
adds: the text tower, the stripe head and the alignment losses.  mia runs the trainer's own
step (``core.step``), loss read-back included.

    python benchmarks/bench_train.py                 # resnet50 384x128 global,part,fine batch 128
    python benchmarks/bench_train.py --quick         # small and fast (CPU smoke run)
    python benchmarks/bench_train.py --device cuda --compile reduce-overhead
"""

from __future__ import annotations

import argparse

import torch
import torchvision

from _common import profile_top, report, result_path, time_it
from mia.core.settings.config import COMPILE_MODES
from mia.core.runtime.policy import autocast, prepare_images, resolve_device
from mia.core.modeling.model import ModelSpec, create_model
from mia.core.training.step import TrainingStep

CUHK_PEDES_TRAIN_IDS = 11003


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-encoder", default="resnet50")
    parser.add_argument("--align", default="global,part,fine")
    parser.add_argument("--image-size", default="384x128")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--words", type=int, default=40)
    parser.add_argument("--classes", type=int, default=CUHK_PEDES_TRAIN_IDS,
                        help="identities of the ID loss (default: CUHK-PEDES's training identities)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", nargs="?", const="default", metavar="MODE", choices=COMPILE_MODES,
                        help="torch.compile the mia model (MODE: default; reduce-overhead replays the "
                             "step as CUDA graphs, which a launch-bound GPU step needs)")
    parser.add_argument("--quick", action="store_true", help="resnet18 at 128x48, batch 16, 3 steps")
    parser.add_argument("--profile", action="store_true", help="also print (and save) the mia step's top ops")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.image_encoder, args.image_size, args.batch_size, args.steps, args.warmup = "resnet18", "128x48", 16, 3, 1
    return args


def host_batch(args, device):
    """Random uint8 images, tokens, phrases and labels in (pinned) host memory: what the
    loader hands the step, so the copies to the GPU are timed as in training."""
    height, width = map(int, args.image_size.split("x"))
    batch = args.batch_size
    images = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8)
    tokens = torch.randint(2, 5000, (batch, args.words))
    phrases = torch.randint(2, 5000, (batch, 10, 6))
    phrases[:, 6:] = 0  # six phrases per caption on average in CUHK-style text
    labels = torch.randint(0, args.classes, (batch,))
    tensors = (images, tokens, phrases, labels)
    return tuple(t.pin_memory() for t in tensors) if device.type == "cuda" else tensors


def mia_step(args, device):
    """The trainer's own step (``core.step.TrainingStep``), losses read back one step late."""
    height, width = map(int, args.image_size.split("x"))
    spec = ModelSpec(image_encoder=args.image_encoder, alignments=args.align.split(","), image_size=(height, width),
                     vocab_size=5000, num_classes=args.classes)
    model = create_model(spec).to(device).train()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model, mode=args.compile) if args.compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    step = TrainingStep(forward, optimizer, device)
    batch, weights = host_batch(args, device), dict.fromkeys(spec.alignments, 1.0)
    return lambda: step(*batch, weights), sum(p.numel() for p in model.parameters())


def bare_trunk_step(args, device, compile_mode=None):
    """The same batch through the bare trunk and cross-entropy; no loss is read back."""
    model = getattr(torchvision.models, args.image_encoder)(num_classes=args.classes).to(device).train()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model, mode=compile_mode) if compile_mode else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    images, _, _, labels = host_batch(args, device)

    def step():
        with autocast(device):
            loss = torch.nn.functional.cross_entropy(forward(prepare_images(images, device)),
                                                     labels.to(device, non_blocking=True))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, sum(p.numel() for p in model.parameters())


def measure(make_step, args, device, *options):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    step, parameters = make_step(args, device, *options)
    seconds = time_it(step, device, args.warmup, args.steps)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return args.batch_size / seconds, peak, parameters, step


def main():
    args = parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    mia_rate, mia_peak, mia_params, step = measure(mia_step, args, device)
    if args.profile:
        profile_top(step, device, result_path("bench_train", device, args.out, ".profile.txt"))
    del step
    bare_rate, bare_peak, bare_params, _ = measure(bare_trunk_step, args, device)
    name = f"mia {args.image_encoder}+bigru [{args.align}]"
    bare = f"bare torchvision {args.image_encoder} + CE"
    rows = [[name, args.image_size, args.batch_size, mia_rate, mia_peak, mia_params / 1e6],
            [bare, args.image_size, args.batch_size, bare_rate, bare_peak, bare_params / 1e6]]
    extra = {f"ratio (mia / bare {args.image_encoder})": round(mia_rate / bare_rate, 3),
             "precision": "bf16 autocast + channels_last" if device.type == "cuda" else "fp32",
             "mia step": f"torch.compile(mode={args.compile!r})" if args.compile else "eager"}
    if args.compile:  # like for like too: the bare trunk under the same compilation
        compiled_rate, compiled_peak, _, _ = measure(bare_trunk_step, args, device, args.compile)
        rows.append([f"{bare}, compiled alike", args.image_size, args.batch_size, compiled_rate, compiled_peak,
                     bare_params / 1e6])
        extra[f"ratio (mia / bare {args.image_encoder} compiled alike)"] = round(mia_rate / compiled_rate, 3)
    report("bench_train", device, ["model", "input", "batch", "images/s", "peak GPU GiB", "params (M)"], rows,
           extra, args.out)


if __name__ == "__main__":
    main()
