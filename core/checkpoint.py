"""Checkpoints: one dict of plain types and tensors, written atomically, loadable with
``torch.load(weights_only=True)`` (no pickled code runs when a checkpoint is opened)."""

from __future__ import annotations

from pathlib import Path

import torch

from mia.core.atomic import atomic_path
from mia.core.errors import MiaError
from mia.core.model import MiaModel, ModelSpec, create_model
from mia.core.tokenizer import Vocabulary

FORMAT = "mia-checkpoint/1"


def save_checkpoint(path: str | Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)


def read_torch_file(path: str | Path, label: str):
    """``torch.load(weights_only=True)`` with one-line errors that start with ``label``."""
    path = Path(path)
    if not path.is_file():
        raise MiaError(f"{label}: file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "not what we expected"
        raise MiaError(f"{label}: not a PyTorch weights file ({type(exc).__name__})") from None


def load_checkpoint(path: str | Path) -> dict:
    payload = read_torch_file(path, f"checkpoint {path}")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MiaError(f"checkpoint {path}: not a mia checkpoint (expected format {FORMAT})")
    return payload


def model_from_checkpoint(payload: dict, path: str | Path = "checkpoint") -> tuple[MiaModel, Vocabulary]:
    """The trained model (eval mode, CPU) and its vocabulary."""
    spec = ModelSpec.from_dict(payload["spec"])
    model = create_model(spec)
    missing, unexpected = _key_mismatch(model.state_dict(), payload["model"])
    if missing or unexpected:
        raise MiaError(f"{path}: its weights do not fit this mia's {'+'.join(spec.alignments)} model "
                       f"(written by mia {payload.get('mia_version', '?')}; missing {', '.join(missing[:3]) or 'none'}; "
                       f"unexpected {', '.join(unexpected[:3]) or 'none'})")
    model.load_state_dict(payload["model"])
    model.active = list(payload.get("active", spec.alignments))
    return model.eval(), Vocabulary(payload["vocab"])


def _key_mismatch(expected: dict, found: dict) -> tuple[list[str], list[str]]:
    return sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
