"""Parameter types and callbacks: every option value is checked when the command line is
parsed, so a bad value is click's one-line usage error naming the option and the form it
expects, before any data is read or any model is built.

Why a ``Number`` type instead of ``click.IntRange``/``FloatRange``: those accept ``nan``
(every comparison with NaN is false) and ``inf``, and a learning rate of ``inf`` would
otherwise surface an epoch later as "training diverged".
"""

from __future__ import annotations

import math

import click

from mia.core.errors import MiaError
from mia.core.stages import parse_weight_items


class Number(click.ParamType):
    """A finite int or float within bounds; ``above`` is an exclusive lower bound."""

    def __init__(self, kind: type = int, minimum: float | None = None, above: float | None = None,
                 maximum: float | None = None):
        self.kind, self.minimum, self.above, self.maximum = kind, minimum, above, maximum
        self.name = "integer" if kind is int else "number"

    def expected(self) -> str:
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.above is not None:
            bounds.append(f"> {self.above:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        noun = "an integer" if self.kind is int else "a finite number"
        return f"{noun} {' and '.join(bounds)}".rstrip()

    def convert(self, value, param, ctx):
        if isinstance(value, self.kind) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = self.kind(str(value).strip())
            except ValueError:
                self.fail(f"expected {self.expected()}, got {value!r}", param, ctx)
        if self.kind is float and not math.isfinite(number):
            self.fail(f"expected {self.expected()}, got {value!r}", param, ctx)
        if ((self.minimum is not None and number < self.minimum) or (self.above is not None and number <= self.above)
                or (self.maximum is not None and number > self.maximum)):
            self.fail(f"expected {self.expected()}, got {value!r}", param, ctx)
        return number


COUNT = Number(int, minimum=1)  # epochs, sizes, chunks: at least one
NON_NEGATIVE_INT = Number(int, minimum=0)  # workers, seeds
POSITIVE = Number(float, above=0)  # learning rate
NON_NEGATIVE = Number(float, minimum=0)  # weight decay, margins, loss weights


def parse_image_size(ctx, param, value):
    """``HEIGHTxWIDTH`` -> (height, width), each at least 32 pixels."""
    if value is None or isinstance(value, tuple):
        return value
    try:
        height, width = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected HEIGHTxWIDTH such as 384x128, got {value!r}") from None
    if min(height, width) < 32:
        raise click.BadParameter(f"expected HEIGHTxWIDTH of at least 32x32 such as 384x128, got {value!r}")
    return height, width


def parse_list(ctx, param, value):
    """``a,b,c`` -> ``["a", "b", "c"]`` (blanks dropped; an empty list is an error)."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter("expected a comma-separated list such as global,part")
    return items


def parse_weights_option(ctx, param, value):
    """``NAME=W,...`` with every weight finite and >= 0."""
    if value is None:
        return None
    try:
        return parse_weight_items(value)
    except MiaError as exc:
        raise click.BadParameter(str(exc)) from None


def parse_seeds(ctx, param, value):
    """``0,1,2`` -> distinct non-negative integers (None when not given)."""
    if value is None:
        return None
    try:
        seeds = [int(s) for s in value.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 0,1,2, got {value!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"expected distinct non-negative integers such as 0,1,2, got {value!r}")
    return seeds
