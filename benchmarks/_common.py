"""Shared by the benchmark scripts: timing, the machine description, table and JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import date
from pathlib import Path
from typing import Callable

import torch


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads (torch {torch.__version__})"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(function: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds per call after ``warmup`` calls (median: robust to a noisy neighbour)."""
    for _ in range(warmup):
        function()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def report(name: str, device: torch.device, headers: list[str], rows: list[list], extra: dict, out: str | None) -> None:
    """Print the table (with date and machine) and write it as JSON next to it."""
    print(f"{name} — {date.today().isoformat()} — {machine(device)}")
    print(table(headers, rows))
    for key, value in extra.items():
        print(f"{key}: {value}")
    payload = {"benchmark": name, "date": date.today().isoformat(), "machine": machine(device),
               "columns": headers, "rows": rows, **extra}
    path = Path(out or f"benchmarks/results/{name}-{device.type}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")
