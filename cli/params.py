"""Parameter types and callbacks: every option value is checked when the command line is
parsed, so a bad value is click's one-line usage error naming the option and the form it
expects, before any data is read or any model is built.  Numeric bounds come from
:mod:`mia.core.base.bounds` (training options: ``mia.core.settings.config.BOUNDS``), the same ones the
configuration checks files with.
"""

from __future__ import annotations

import click

from mia.core.base import bounds
from mia.core.base.bounds import Bound
from mia.core.base.errors import MiaError
from mia.core.settings.stages import parse_weight_items


class Number(click.ParamType):
    """A click type for a number within a :class:`~mia.core.base.bounds.Bound`."""

    def __init__(self, kind: type = int, minimum: float | None = None, above: float | None = None,
                 maximum: float | None = None):
        self.bound = Bound(kind, minimum, above, maximum)
        self.name = "integer" if kind is int else "number"

    @classmethod
    def within(cls, bound: Bound) -> "Number":
        return cls(bound.kind, bound.minimum, bound.above, bound.maximum)

    def convert(self, value, param, ctx):
        number = value
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            try:
                number = self.bound.kind(str(value).strip())
            except ValueError:
                self.fail(f"expected {self.bound.expected()}, got {value!r}", param, ctx)
        if self.bound.kind is float:
            number = float(number)
        if not self.bound.holds(number):
            self.fail(f"expected {self.bound.expected()}, got {value!r}", param, ctx)
        return number


COUNT = Number.within(bounds.COUNT)
NON_NEGATIVE_INT = Number.within(bounds.NON_NEGATIVE_INT)
POSITIVE = Number.within(bounds.POSITIVE)
NON_NEGATIVE = Number.within(bounds.NON_NEGATIVE)


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
