"""Shared by the benchmark scripts: timing, the machine description, table and JSON output.

torch is imported only where a device is timed, so a script that measures whole commands
(bench_cli) stays light enough not to inflate what it measures."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Callable


def machine(device=None) -> str:
    """The machine, in words (``device=None``: the CPU, without asking torch)."""
    if device is None:
        return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads (torch {torch.__version__})"


def synchronize(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def time_it(function: Callable[[], object], device, warmup: int, repeats: int,
            warm_seconds: float = 1.0) -> float:
    """Median seconds per call after ``warmup`` calls (median: robust to a noisy neighbour).
    On a GPU the warm-up lasts at least ``warm_seconds``: an idle GPU's clocks take a while
    to rise, and whichever side of a ratio ran first would otherwise pay for it."""
    warm_until = time.perf_counter() + (warm_seconds if device.type == "cuda" else 0.0)
    done = 0
    while done < warmup or time.perf_counter() < warm_until:
        function()
        synchronize(device)
        done += 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def profile_top(function: Callable[[], object], device, path: str | Path, calls: int = 3,
                rows: int = 18) -> None:
    """Profile ``calls`` calls after a warm-up; print and save the ops that take the most
    time (device time on CUDA, CPU time otherwise) and how busy the device was."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    function()
    synchronize(device)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        for _ in range(calls):
            function()
        synchronize(device)
    wall_ms = (time.perf_counter() - start) * 1e3 / calls
    averages = prof.key_averages()
    lines = [averages.table(sort_by="self_device_time_total" if cuda else "self_cpu_time_total", row_limit=rows)]
    if cuda:  # device-side events only (kernels, copies): op rows repeat their kernels' time
        device_events = [e for e in averages if e.device_type == DeviceType.CUDA]
        busy_ms = sum(e.self_device_time_total for e in device_events) / 1e3 / calls
        launches = sum(e.count for e in device_events) / calls
        lines.append(f"per call: {wall_ms:.1f} ms wall (profiled), GPU busy {busy_ms:.1f} ms, {launches:.0f} kernels")
    else:
        lines.append(f"per call: {wall_ms:.1f} ms wall (profiled)")
    text = "\n".join(lines)
    print(text)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text + "\n")
    print(f"wrote {path}")


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def result_path(name: str, device, out: str | None, suffix: str = ".json") -> Path:
    """``--out`` or ``benchmarks/results/<name>-<device>.json``; other suffixes sit beside it."""
    return Path(out or f"benchmarks/results/{name}-{device.type if device is not None else 'cpu'}.json").with_suffix(suffix)


def report(name: str, device, headers: list[str], rows: list[list], extra: dict, out: str | None) -> None:
    """Print the table (with date and machine) and write it as JSON next to it."""
    print(f"{name} — {date.today().isoformat()} — {machine(device)}")
    print(table(headers, rows))
    for key, value in extra.items():
        print(f"{key}: {value}")
    payload = {"benchmark": name, "date": date.today().isoformat(), "machine": machine(device),
               "columns": headers, "rows": rows, **extra}
    path = result_path(name, device, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")


def random_export(directory: Path, **spec) -> Path:
    """A freshly initialised global+part+fine model (ResNet-18 trunk at 64x32, which the
    scoring benchmarks never run) exported to ONNX in ``directory``: scoring costs the same
    whatever the weights.  ``spec`` overrides ModelSpec fields (embed_dim, num_parts)."""
    import torch

    from mia.core.modeling.model import ModelSpec, create_model
    from mia.core.data.tokenizer import Vocabulary
    from mia.export.exporting import export_model

    spec = ModelSpec(**{"image_encoder": "resnet18", "alignments": ["global", "part", "fine"], "image_size": (64, 32),
                        "vocab_size": 50, "num_classes": 2, "chunker": "rules", **spec})
    model = create_model(spec)
    vocab = Vocabulary(["<pad>", "<unk>", *(f"w{i}" for i in range(48))])
    checkpoint = directory / "random.pt"
    torch.save({"format": "mia-checkpoint/1", "spec": spec.to_dict(), "config": {"data": "random"},
                "tokenizer": vocab.to_dict(), "model": model.state_dict(), "active": spec.alignments}, checkpoint)
    export_model(checkpoint, directory / "export", "onnx", exporter="torchscript", device="cpu", log=lambda m: None)
    return directory / "export"


def run_python(*args, show: bool = False) -> subprocess.CompletedProcess:
    """``python ARGS`` in a fresh process; exits with its stderr if it fails.  ``show``: let
    its output through (a long run's epoch lines) instead of capturing it."""
    command = [sys.executable, *map(str, args)]
    done = subprocess.run(command, capture_output=not show, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed" + (f":\n{done.stderr[-2000:]}" if done.stderr else ""))
    return done


def run_mia(*args, show: bool = False) -> subprocess.CompletedProcess:
    """``mia ARGS`` in a fresh process: what a user runs."""
    return run_python("-m", "mia.cli", *args, show=show)
