"""``manifest.json``: everything a client needs besides the graphs, and their checksums.

Torch-free: the runtime reads it to preprocess exactly as training did and refuses
graphs whose sha256 does not match (a tampered or half-copied model directory).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path, PurePosixPath

from mia.core.base.errors import MiaError
from mia.core.data.hf_tokenizer import TOKENIZER_FILE
from mia.core.data.tokenizer import Vocabulary

MANIFEST = "manifest.json"
FORMAT = "mia-export/2"
#: earlier formats still read: 1 = before tokenizers were declared (always mia's word vocabulary)
READABLE_FORMATS = ("mia-export/1", FORMAT)
TOKENIZERS = ("words", "hf")
GRAPHS = ("image_encoder", "text_encoder", "scorer")  # every format; format 2 adds "gallery"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _names_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in value)


#: dotted key -> (check, what is expected); the runtime reads exactly these
SCHEMA = {
    "backend": (lambda v: v in ("onnx", "torchscript"), "'onnx' or 'torchscript'"),
    "alignments": (lambda v: isinstance(v, list) and v and all(isinstance(a, str) for a in v), "a list of alignment names"),
    "image.size": (lambda v: isinstance(v, list) and len(v) == 2 and all(_is_count(x) for x in v), "[height, width]"),
    "image.mean": (lambda v: isinstance(v, list) and len(v) == 3 and all(_is_number(x) for x in v), "3 numbers"),
    "image.std": (lambda v: isinstance(v, list) and len(v) == 3 and all(_is_number(x) and x > 0 for x in v),
                  "3 positive numbers"),
    "text.tokenizer": (lambda v: v in TOKENIZERS, f"one of {', '.join(TOKENIZERS)}"),
    "text.max_words": (_is_count, "an integer >= 1"),
    "text.max_phrases": (_is_count, "an integer >= 1"),
    "text.phrase_words": (_is_count, "an integer >= 1"),
    "text.chunker": (lambda v: v is None or isinstance(v, str), "a chunker name or null"),
    "text.phrase_encoding": (lambda v: v in ("sequences", "spans"), "sequences or spans"),
    "files": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(h, str) and _SHA256.fullmatch(h)
                                                    for k, h in v.items()), "file name -> sha256 (64 hex digits)"),
    **{f"graphs.{graph}.{field}": check for graph in GRAPHS for field, check in (
        ("file", (lambda v: isinstance(v, str) and v != "", "a file name")),
        ("inputs", (_names_list, "a list of {name, ...}")),
        ("outputs", (_names_list, "a list of {name, ...}")))},
}
#: what each tokenizer kind adds to the schema
TOKENIZER_SCHEMA = {
    "words": {"text.vocabulary": (lambda v: isinstance(v, list) and v[:2] == ["<pad>", "<unk>"]
                                  and all(isinstance(w, str) for w in v) and len(set(v)) == len(v),
                                  "a list of distinct words starting <pad>, <unk>")},
    "hf": {"text.tokenizer_file": (lambda v: isinstance(v, str) and v != "", "a file name")},
}
#: format 2's graph of the prepared gallery
GALLERY_SCHEMA = {f"graphs.gallery.{field}": check for field, check in (
    ("file", (lambda v: isinstance(v, str) and v != "", "a file name")),
    ("inputs", (_names_list, "a list of {name, ...}")), ("outputs", (_names_list, "a list of {name, ...}")))}
_MISSING = object()


def _lookup(manifest: dict, dotted: str):
    value = manifest
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _inside(model_dir: Path, name: str) -> bool:
    """A listed file must be a plain relative path that stays in the model directory."""
    path = PurePosixPath(name)
    return (not path.is_absolute() and ".." not in path.parts and "\\" not in name and "\0" not in name
            and (model_dir / name).resolve().is_relative_to(model_dir.resolve()))


def validate_manifest(manifest, path: Path) -> None:
    """Every key the runtime reads is present with the right form, and every graph file is
    listed with its sha256 inside the model directory: a manifest cannot point elsewhere."""
    if not isinstance(manifest, dict) or manifest.get("format") not in READABLE_FORMATS:
        raise MiaError(f"{path}: not a mia export manifest (expected format {FORMAT})")
    if manifest["format"] == "mia-export/1" and isinstance(manifest.get("text"), dict):
        manifest["text"].update(tokenizer="words", phrase_encoding="sequences")
    schema = {**SCHEMA, **TOKENIZER_SCHEMA.get(_lookup(manifest, "text.tokenizer"), {}),
              **(GALLERY_SCHEMA if manifest["format"] != "mia-export/1" else {})}
    for dotted, (check, expected) in schema.items():
        value = _lookup(manifest, dotted)
        if value is _MISSING:
            raise MiaError(f"{path}: key '{dotted}' is missing")
        if not check(value):
            raise MiaError(f"{path}: key '{dotted}' must be {expected}, got {json.dumps(value)[:80]}")
    for name in manifest["files"]:
        if not _inside(path.parent, name):
            raise MiaError(f"{path}: listed file '{name}' is outside the model directory")
    graphs = GRAPHS if manifest["format"] == "mia-export/1" else (*GRAPHS, "gallery")
    needed = {f"graph '{graph}'": manifest["graphs"][graph]["file"] for graph in graphs}
    if manifest["text"]["tokenizer"] == "hf":
        needed["the tokenizer"] = manifest["text"]["tokenizer_file"]
    for reader, file in needed.items():
        if file not in manifest["files"]:
            raise MiaError(f"{path}: {reader} reads '{file}', which is not listed with a sha256 in 'files'")


def read_description(folder: Path, name: str, what: str, damaged) -> object:
    """The JSON file ``name`` that describes ``folder`` (a model's manifest, a gallery
    store's ``index.json``): missing is "not WHAT", unreadable is ``damaged(why)``, the
    caller's one line for a damaged folder of its kind."""
    path = folder / name
    if not path.is_file():
        raise MiaError(f"{folder}: not {what} ({name} not found)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise damaged(f"not valid JSON ({str(exc)[:100]})") from None


def read_manifest(model_dir: str | Path, verify: bool = True) -> dict:
    """The manifest of an exported model directory, validated, with every listed file checked."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST
    manifest = read_description(model_dir, MANIFEST, "an exported mia model", lambda why: MiaError(f"{path}: {why}"))
    validate_manifest(manifest, path)
    if verify:
        for name, expected in manifest["files"].items():
            file = model_dir / name
            if not file.is_file():
                raise MiaError(f"{file}: missing (listed in {MANIFEST})")
            actual = sha256_of(file)
            if actual != expected:
                raise MiaError(f"{file}: sha256 mismatch (manifest {expected[:12]}..., file {actual[:12]}...): "
                               "the file was changed after export")
    return manifest


def tokenizer_entries(tokenizer, directory: Path) -> dict:
    """The manifest's description of ``tokenizer``; a Hugging Face one is written beside the
    graphs as ``tokenizer.json`` (listed in ``files`` with its sha256 by the caller)."""
    if tokenizer.kind == "words":
        return {"tokenizer": "words", "vocabulary": list(tokenizer.words), "pad_id": 0, "unk_id": 1,
                "words": "lowercase [a-z0-9]+('[a-z]+)?, punctuation dropped"}
    tokenizer.save(directory / TOKENIZER_FILE)
    return {"tokenizer": "hf", "tokenizer_file": TOKENIZER_FILE, "pad_id": 0, "id_offset": 1}


def read_tokenizer(manifest: dict, model_dir: Path):
    """The tokenizer a manifest declares (the ``tokenizers`` package for ``hf``; no torch)."""
    text = manifest["text"]
    if text["tokenizer"] == "words":
        return Vocabulary(text["vocabulary"])
    from mia.core.data.hf_tokenizer import HFTokenizer

    return HFTokenizer.from_file(model_dir / text["tokenizer_file"])


def model_digest(manifest: dict) -> str:
    """One sha256 naming this exact model (graphs + preprocessing), for cache keys."""
    files = json.dumps(manifest["files"], sort_keys=True)
    preprocessing = json.dumps([manifest["image"], manifest["text"], manifest["alignments"]], sort_keys=True)
    return hashlib.sha256((files + preprocessing).encode()).hexdigest()


def model_card(manifest: dict) -> dict:
    """The model in its users' terms: the data it learnt from, its image and text encoders
    (and where their training started), when it was exported, and its alignments with their
    weights.  None of it is read by the runtime, so none of it is required: what a
    manifest lacks (``exported``, an ISO timestamp, is optional) reads as 'unknown'."""
    source = manifest.get("source") if isinstance(manifest.get("source"), dict) else {}
    weights = manifest.get("weights") if isinstance(manifest.get("weights"), dict) else {}
    return {"trained on": str(source.get("config") or "unknown"),
            "image encoder": _encoder(manifest.get("image_encoder"), manifest["image"]),
            "text encoder": _encoder(manifest.get("text_encoder"), manifest["text"]),
            "exported": str(manifest.get("exported") or "unknown")[:10],
            "alignments": {name: weights.get(name, 1.0) for name in manifest["alignments"]}}


def _encoder(name, side: dict) -> str:
    """``resnet50 (trained from IMAGENET1K_V2)``: the encoder and the weights its training
    started from, when the manifest says (``None``: from scratch)."""
    if "weights" not in side:
        return str(name or "unknown")
    start = Path(str(side["weights"])).name if side["weights"] else "scratch"
    return f"{name or 'unknown'} (trained from {start})"
