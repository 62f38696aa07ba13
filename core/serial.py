"""Round-tripping config dataclasses through plain dicts (checkpoints hold no pickled code)."""

from __future__ import annotations

from dataclasses import asdict, fields


class DictRoundTrip:
    """``to_dict`` / ``from_dict`` for a dataclass; tuple fields come back as tuples and
    unknown keys (from a newer or older mia) are ignored."""

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name: f for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name, value in values.items():
            if isinstance(value, list) and "tuple" in str(known[name].type):
                values[name] = tuple(value)
        return cls(**values)
