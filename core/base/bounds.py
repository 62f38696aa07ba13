"""A number's bounds, stated once: the training configuration checks its values with them
and the command line parses with them, so an option's limits cannot differ between
``mia train --epochs 0`` and a config file that says ``epochs = 0``.

Why not ``click.IntRange``/``FloatRange``: those accept ``nan`` (every comparison with NaN
is false) and ``inf``, and a learning rate of ``inf`` would otherwise surface an epoch
later as "training diverged"."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Bound:
    """A finite int or float; ``above`` is an exclusive lower bound."""

    kind: type = int
    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None

    def expected(self) -> str:
        limits = []
        if self.minimum is not None:
            limits.append(f">= {self.minimum:g}")
        if self.above is not None:
            limits.append(f"> {self.above:g}")
        if self.maximum is not None:
            limits.append(f"<= {self.maximum:g}")
        noun = "an integer" if self.kind is int else "a finite number"
        return f"{noun} {' and '.join(limits)}".rstrip()

    def holds(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        return not ((self.minimum is not None and value < self.minimum) or (self.above is not None and value <= self.above)
                    or (self.maximum is not None and value > self.maximum))


COUNT = Bound(int, minimum=1)  # epochs, sizes, chunks: at least one
NON_NEGATIVE_INT = Bound(int, minimum=0)  # workers, seeds
POSITIVE = Bound(float, above=0)  # learning rate
NON_NEGATIVE = Bound(float, minimum=0)  # weight decay, margins, loss weights
