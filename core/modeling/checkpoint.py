"""Checkpoints: one dict of plain types and tensors, written atomically, loadable with
``torch.load(weights_only=True)`` (no pickled code runs when a checkpoint is opened).

A checkpoint is read from disk, where it may have been damaged, edited or written by
another mia, so :func:`load_checkpoint` checks its structure and :func:`model_from_checkpoint`
checks every weight's name and shape before loading: each problem is one line that names
the file and what is wrong.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from mia.core.base.atomic import atomic_path
from mia.core.settings.config import TrainConfig
from mia.core.base.errors import MiaError
from mia.core.modeling.model import MiaModel, ModelSpec, create_model
from mia.core.data.tokenizer import Vocabulary

FORMAT = "mia-checkpoint/1"

#: key -> (type, what it is); every checkpoint has these
REQUIRED = {"spec": (dict, "the model description"), "config": (dict, "the training options"),
            "model": (dict, "the weights")}
#: what ``--resume`` needs besides (only ``last.pt`` has the optimizer)
RESUMABLE = {"optimizer": (dict, "the optimizer state"), "epoch": (int, "the epochs done"),
             "history": (list, "the per-epoch metrics"), "best": (dict, "the best epoch so far")}


def tokenizer_from_dict(data: dict):
    """A tokenizer from its :meth:`to_dict` form (checkpoints keep it so)."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == Vocabulary.kind:
        return Vocabulary(data["vocabulary"])
    if kind == "hf":
        from mia.core.data.hf_tokenizer import HFTokenizer  # needs the optional `tokenizers` package

        return HFTokenizer.from_json(data["json"])
    raise ValueError(f"unknown tokenizer kind {kind!r} (expected 'words' or 'hf')")


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """Write ``payload`` atomically.  It is serialised in memory first (briefly, the file's
    size) and written by Python, so that a full disk is an ENOSPC (one line, see
    :mod:`mia.core.base.diskspace`) and a Ctrl-C a KeyboardInterrupt: torch's own file writer
    reports either as a RuntimeError that names no cause."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    with atomic_path(path, buffer.tell(), "checkpoint") as tmp:
        tmp.write_bytes(buffer.getbuffer())


def read_torch_file(path: str | Path, label: str):
    """``torch.load(weights_only=True)`` with one-line errors that start with ``label``."""
    path = Path(path)
    if path.is_dir():
        raise MiaError(f"{label}: is a directory, expected a file")
    if not path.is_file():
        raise MiaError(f"{label}: file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "not what we expected"
        raise MiaError(f"{label}: not a PyTorch weights file ({type(exc).__name__})") from None


def load_checkpoint(path: str | Path, resumable: bool = False) -> dict:
    """The checkpoint at ``path``, its structure checked (``resumable``: also what ``--resume`` needs)."""
    payload = read_torch_file(path, f"checkpoint {path}")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise MiaError(f"checkpoint {path}: not a mia checkpoint (expected format {FORMAT})")
    for key, (kind, meaning) in {**REQUIRED, **(RESUMABLE if resumable else {})}.items():
        if key not in payload:
            raise MiaError(f"checkpoint {path}: field '{key}' ({meaning}) is missing")
        if not isinstance(payload[key], kind) or isinstance(payload[key], bool):
            raise MiaError(f"checkpoint {path}: field '{key}' must be a {kind.__name__}, "
                           f"got {type(payload[key]).__name__}")
    for label, cls in (("spec", ModelSpec), ("config", TrainConfig)):
        problems = cls.type_errors(payload[label])
        if problems:
            raise MiaError(f"checkpoint {path}: '{label}' {problems[0]}")
    if "tokenizer" not in payload and "vocab" not in payload:
        raise MiaError(f"checkpoint {path}: field 'tokenizer' (how captions become ids) is missing")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload["model"].items()):
        raise MiaError(f"checkpoint {path}: field 'model' must map weight names to tensors")
    active = payload.get("active", payload["spec"].get("alignments"))
    if not isinstance(active, list) or not set(active) <= set(payload["spec"].get("alignments", [])):
        raise MiaError(f"checkpoint {path}: field 'active' must list some of the alignments in 'spec'")
    return payload


def checkpoint_tokenizer(payload: dict, path: str | Path = "checkpoint"):
    """The tokenizer the model was trained with (checkpoints before tokenizers were kept
    whole hold only the word list, ``vocab``)."""
    field = "tokenizer" if "tokenizer" in payload else "vocab"
    try:
        if field == "vocab":
            return Vocabulary(payload["vocab"])
        return tokenizer_from_dict(payload["tokenizer"])
    except (TypeError, ValueError, KeyError) as exc:
        raise MiaError(f"checkpoint {path}: field '{field}' is not a mia tokenizer ({exc})") from None


def model_from_checkpoint(payload: dict, path: str | Path = "checkpoint") -> tuple[MiaModel, object]:
    """The trained model (eval mode, CPU) and its tokenizer."""
    spec = ModelSpec.from_dict(payload["spec"])
    tokenizer = checkpoint_tokenizer(payload, path)
    try:
        model = create_model(spec)
    except MiaError as exc:  # e.g. an encoder whose plugin is not installed here
        raise MiaError(f"checkpoint {path}: {exc}") from None
    except (TypeError, ValueError, RuntimeError) as exc:
        raise MiaError(f"checkpoint {path}: its 'spec' does not describe a model this mia can build "
                       f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    check_weights(model.state_dict(), payload["model"], path, spec, payload.get("mia_version", "?"))
    model.load_state_dict(payload["model"])
    model.active = list(payload.get("active", spec.alignments))
    return model.eval(), tokenizer


def check_weights(expected: dict, found: dict, path, spec: ModelSpec, version: str) -> None:
    """Same names and shapes as the model built from the spec, or one line saying which differ."""
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        raise MiaError(f"{path}: its weights do not fit this mia's {'+'.join(spec.alignments)} model "
                       f"(written by mia {version}; missing {', '.join(missing[:3]) or 'none'}; "
                       f"unexpected {', '.join(unexpected[:3]) or 'none'})")
    for name, tensor in expected.items():
        if tuple(found[name].shape) != tuple(tensor.shape):
            raise MiaError(f"{path}: weight '{name}' has shape {tuple(found[name].shape)}, "
                           f"the model built from its spec needs {tuple(tensor.shape)}")
