"""Progress lines with rate and ETA for long work (generation, epochs, evaluation).

On a terminal the line redraws in place; in a log (CI, ``nohup``) it prints a line at
every tenth of the work so that the log stays readable.
"""

from __future__ import annotations

import sys
import time


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """``with Progress(total, "epoch 1/5") as bar: bar.update(1, loss=0.3)``."""

    def __init__(self, total: int, label: str, unit: str = "it", stream=None, enabled: bool = True):
        self.total, self.label, self.unit = max(total, 1), label, unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.done = 0
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._last_decile = -1
        self.postfix: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self._draw(final=True)

    def update(self, n: int = 1, **postfix) -> None:
        self.done += n
        self.postfix.update(postfix)
        now = time.perf_counter()
        decile = self.done * 10 // self.total
        if self.interactive and now - self._last_draw > 0.25:
            self._draw()
        elif not self.interactive and decile > self._last_decile and self.done < self.total:
            self._last_decile = decile
            self._draw()

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        extra = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.postfix.items())
        return (f"{self.label} {self.done}/{self.total} {self.unit} "
                f"[{format_seconds(elapsed)}<{format_seconds(eta)}, {rate:.1f} {self.unit}/s] {extra}").rstrip()

    def _draw(self, final: bool = False) -> None:
        if not self.enabled:
            return
        self._last_draw = time.perf_counter()
        if self.interactive:
            self.stream.write("\r\033[K" + self.line() + ("\n" if final else ""))
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
