"""Round-tripping config dataclasses through plain dicts (checkpoints hold no pickled code).

A dict read back from a file may have been edited or damaged, so :meth:`DictRoundTrip.type_errors`
checks each known field against the dataclass annotation before anything uses it: a
checkpoint whose ``embed_dim`` is ``"big"`` is then one line naming the field, not a
``TypeError`` deep inside model assembly.
"""

from __future__ import annotations

from dataclasses import asdict, fields


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: annotation text -> check; annotations are strings (``from __future__ import annotations``)
_CHECKS = {
    "None": lambda v: v is None,
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": _number,
    "dict": lambda v: isinstance(v, dict),
    "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "dict[str, float]": lambda v: isinstance(v, dict) and all(isinstance(k, str) and _number(x) for k, x in v.items()),
    "tuple[int, int]": lambda v: isinstance(v, (list, tuple)) and len(v) == 2
    and all(isinstance(x, int) and not isinstance(x, bool) for x in v),
    "tuple[float, float, float]": lambda v: isinstance(v, (list, tuple)) and len(v) == 3 and all(map(_number, v)),
}


def value_matches(value, annotation: str) -> bool:
    """Whether ``value`` fits ``annotation`` (``"int | None"`` and the like); unknown
    annotations accept anything."""
    alternatives = [a.strip() for a in annotation.split("|")]
    if any(a not in _CHECKS for a in alternatives):
        return True
    return any(_CHECKS[a](value) for a in alternatives)


class DictRoundTrip:
    """``to_dict`` / ``from_dict`` for a dataclass; tuple fields come back as tuples and
    unknown keys (from a newer or older mia) are ignored."""

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def type_errors(cls, data: dict) -> list[str]:
        """``"field 'x' must be int, got 'y'"`` for every known field of the wrong type."""
        return [f"field '{f.name}' must be {f.type}, got {data[f.name]!r}"[:200]
                for f in fields(cls) if f.name in data and not value_matches(data[f.name], str(f.type))]

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name: f for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name, value in values.items():
            if isinstance(value, list) and "tuple" in str(known[name].type):
                values[name] = tuple(value)
        return cls(**values)
