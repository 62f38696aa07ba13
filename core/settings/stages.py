"""Alignment names, per-alignment weights and step training (MIA trains the global
alignment first, then adds the finer ones); torch-free, so the command line can check them.

``--stages global:4,part:2,fine:2`` trains ``global`` for 4 epochs, then ``global+part``
for 2, then all three for 2.  ``--stages auto`` splits ``--epochs`` evenly over the
``--align`` list in order (earlier stages take the remainder).  Without ``--stages`` all
alignments train together from the first epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mia.core.base.errors import MiaError
from mia.core.registry.plugins import get_component


def canonical_alignments(names) -> list[str]:
    """Resolve aliases (``global-global`` -> ``global``), keep order, drop repeats."""
    resolved = []
    for name in names:
        canonical = get_component("alignment", name.strip()).name
        if canonical not in resolved:
            resolved.append(canonical)
    if not resolved:
        raise MiaError("--align needs at least one alignment")
    return resolved


@dataclass(frozen=True)
class Stage:
    alignments: tuple[str, ...]  # active in this stage (cumulative)
    epochs: int


def parse_stage_list(text: str) -> list[tuple[str, int]]:
    """``"global:4,part:2"`` -> ``[("global", 4), ("part", 2)]`` (names not yet resolved)."""
    pairs = []
    for item in text.split(","):
        name, sep, count = item.strip().partition(":")
        if not sep or not name or not count.strip().isdigit() or int(count) < 1:
            raise MiaError(f"--stages: expected NAME:EPOCHS items such as global:4,part:2 or 'auto', got {item.strip()!r}")
        pairs.append((name.strip(), int(count)))
    return pairs


def plan_stages(stages: str | None, align: list[str], epochs: int) -> list[Stage]:
    """The stage plan for canonical alignment names ``align`` and a budget of ``epochs``."""
    if stages is None:
        return [Stage(tuple(align), epochs)]
    if stages == "auto":
        if epochs < len(align):
            raise MiaError(f"--stages auto: {epochs} epoch(s) cannot cover {len(align)} stages ({','.join(align)})")
        base, extra = divmod(epochs, len(align))
        counts = [base + (1 if i < extra else 0) for i in range(len(align))]
        pairs = list(zip(align, counts))
    else:
        pairs = parse_stage_list(stages)
        names = canonical_alignments([name for name, _ in pairs])
        if len(names) != len(pairs):
            raise MiaError(f"--stages names an alignment twice: {stages}")
        if names != list(align):
            raise MiaError(f"--stages names {','.join(names)} must be the --align list in order ({','.join(align)})")
        if sum(count for _, count in pairs) != epochs:
            raise MiaError(f"--stages add up to {sum(c for _, c in pairs)} epochs but --epochs is {epochs}")
    return [Stage(tuple(align[: i + 1]), count) for i, (_, count) in enumerate(pairs)]


def active_at(plan: list[Stage], epoch: int) -> Stage:
    """The stage that 0-based ``epoch`` belongs to."""
    end = 0
    for stage in plan:
        end += stage.epochs
        if epoch < end:
            return stage
    return plan[-1]


def resolve_weights(weights: dict[str, float], align: list[str], option: str = "--weights") -> dict[str, float]:
    """Per-alignment weights by canonical name; each must name a trained alignment."""
    resolved = {}
    for name, value in weights.items():
        canonical = canonical_alignments([name])[0]
        if canonical not in align:
            raise MiaError(f"{option} names '{name}', which is not trained (--align {','.join(align)})")
        resolved[canonical] = float(value)
    return resolved


def parse_weight_items(text: str) -> dict[str, float]:
    """``"global=1,part=0.5"`` -> ``{"global": 1.0, "part": 0.5}`` (names not yet resolved)."""
    weights = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise MiaError(f"expected NAME=NUMBER items such as global=1,part=0.5, got {item.strip()!r}") from None
        if not sep or not name.strip() or not math.isfinite(weights[name.strip()]) or weights[name.strip()] < 0:
            raise MiaError(f"expected NAME=NUMBER items with a finite number >= 0, got {item.strip()!r}")
    return weights
