"""Serving under load: `mia serve` started as a real process over a run's index, driven by
8 and 64 concurrent clients sending varied descriptions to /api/search; requests per
second, p50/p99 latency, errors, and the server's peak memory.

    python benchmarks/bench_serve.py runs/demo            # after `make demo`: RUN/exported and RUN/index
    python benchmarks/bench_serve.py runs/demo --quick    # fewer requests, shorter limits

Each level stops after --requests answers or --seconds, whichever comes first.  A client
is a thread with one keep-alive connection (http.client: next to no work of its own, and
the clients share the machine with the server, as they would on one host).  While they
run, another thread asks /healthz every half second: a server busy searching must still
say it is alive.  Peak memory is the server's VmHWM (/proc/PID/status) after each level,
so it covers every level so far.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from _common import report

PEOPLE = ["a man", "a woman", "a young man", "an older woman", "a person"]
COLOURS = ["black", "white", "red", "blue", "green", "grey", "yellow", "orange", "pink", "brown"]
TOPS = ["coat", "jacket", "shirt", "t-shirt", "hoodie", "sweater", "dress"]
BOTTOMS = ["trousers", "jeans", "shorts", "skirt"]
CARRIED = ["backpack", "handbag", "shoulder bag", "umbrella"]
HEALTH_EVERY_S = 0.5
WARMUP = 5  # searches before the clock starts: ONNX Runtime's first runs are slower


def descriptions(count: int, seed: int = 0) -> list[str]:
    """``count`` different descriptions in the words of person-search captions."""
    rng = random.Random(seed)
    return [f"{rng.choice(PEOPLE)} in a {rng.choice(COLOURS)} {rng.choice(TOPS)} and {rng.choice(COLOURS)} "
            f"{rng.choice(BOTTOMS)} carrying a {rng.choice(COLOURS)} {rng.choice(CARRIED)}" for _ in range(count)]


def start_server(run: Path, device: str) -> tuple[subprocess.Popen, str, int, list[str]]:
    """`mia serve --port 0 --quiet` on the run; returns the process, its address and the
    list its stderr keeps being collected into (a full pipe would stall the server)."""
    command = [sys.executable, "-m", "mia.cli", "serve", "--model", str(run / "exported"), "--index", str(run / "index"),
               "--host", "127.0.0.1", "--port", "0", "--quiet", "--device", device]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    log = []
    for line in process.stderr:
        log.append(line.rstrip("\n"))
        serving = re.match(r"serving \d+ images on http://([\d.]+):(\d+)/", line)
        if serving:
            threading.Thread(target=lambda: log.extend(rest.rstrip("\n") for rest in process.stderr), daemon=True).start()
            return process, serving[1], int(serving[2]), log
    process.wait()
    sys.exit(f"{' '.join(command)} did not start:\n" + "\n".join(log[-20:]))


def get(connection: http.client.HTTPConnection, path: str) -> int:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response.status


def poll_health(host: str, port: int, stop: threading.Event, answers: list[float | None]) -> None:
    """Ask /healthz every :data:`HEALTH_EVERY_S` until ``stop``; seconds per answer, None per failure."""
    connection = http.client.HTTPConnection(host, port, timeout=5)
    while True:
        started = time.perf_counter()
        try:
            answers.append(time.perf_counter() - started if get(connection, "/healthz") == 200 else None)
        except (OSError, http.client.HTTPException):
            answers.append(None)
            connection.close()
        if stop.wait(HEALTH_EVERY_S):
            return


def drive(host: str, port: int, clients: int, requests: int, seconds: float, queries: list[str]) -> dict:
    """``clients`` threads searching until ``requests`` answers or ``seconds``: throughput, latency, errors."""
    latencies, errors, lock, numbers = [], [], threading.Lock(), itertools.count()
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=120)
        while time.monotonic() < deadline and (n := next(numbers)) < requests:
            path = "/api/search?" + urlencode({"q": queries[n % len(queries)], "k": 10})
            started = time.perf_counter()
            try:
                ok = get(connection, path) == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()  # http.client reconnects on the next request
            with lock:
                (latencies if ok else errors).append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1e3 if latencies else np.array([np.nan])
    return {"answered": len(latencies), "errors": len(errors), "per_second": len(latencies) / wall,
            "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", default="runs/demo", help="a run with exported/ and index/ (default runs/demo)")
    parser.add_argument("--clients", type=lambda v: [int(x) for x in v.split(",")], default=[8, 64])
    parser.add_argument("--requests", type=int, default=2000, help="searches per level, at most")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per level, at most")
    parser.add_argument("--queries", type=int, default=200, help="different descriptions sent")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="200 requests or 15 s per level")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/cpu[-quick]/bench_serve-cpu.json")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.seconds = 200, 15.0
    run = Path(args.run)
    for needed in ("exported", "index"):
        if not (run / needed).is_dir():
            sys.exit(f"{run}: no {needed}/ in it (run 'make demo' first, or give a run that has both)")
    queries = descriptions(args.queries)
    process, host, port, log = start_server(run, args.device)
    try:
        warm = http.client.HTTPConnection(host, port, timeout=120)
        for query in queries[:WARMUP]:
            get(warm, "/api/search?" + urlencode({"q": query, "k": 10}))
        gallery = int(re.search(r"serving (\d+) images", "\n".join(log))[1])
        rows = []
        for clients in args.clients:
            stop, health = threading.Event(), []
            poller = threading.Thread(target=poll_health, args=(host, port, stop, health))
            poller.start()
            result = drive(host, port, clients, args.requests, args.seconds, queries)
            stop.set()
            poller.join()
            answered = [s for s in health if s is not None]
            rows.append([clients, result["answered"], round(result["per_second"], 1), round(result["p50"], 1),
                         round(result["p99"], 1), result["errors"], f"{len(answered)}/{len(health)}",
                         round(max(answered, default=float("nan")) * 1e3, 1), round(peak_rss_mib(process.pid))])
    finally:
        process.terminate()
        process.wait(timeout=30)
    out = args.out or f"benchmarks/results/{'cpu-quick' if args.quick else 'cpu'}/bench_serve-cpu.json"
    report("bench_serve", None, ["clients", "searches", "requests/s", "p50 ms", "p99 ms", "errors",
                                 "healthz answered", "healthz max ms", "server peak RSS MiB"], rows,
           {"run": str(run), "gallery": gallery, "device": args.device, "queries": args.queries,
            "limits": f"{args.requests} searches or {args.seconds:g} s per level", "k": 10,
            "server": "mia serve --quiet (one uvicorn process, searches one at a time)"}, out)


if __name__ == "__main__":
    main()
