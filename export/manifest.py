"""``manifest.json``: everything a client needs besides the graphs, and their checksums.

Torch-free: the runtime reads it to preprocess exactly as training did and refuses
graphs whose sha256 does not match (a tampered or half-copied model directory).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mia.core.errors import MiaError

MANIFEST = "manifest.json"
FORMAT = "mia-export/1"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(model_dir: str | Path, verify: bool = True) -> dict:
    """The manifest of an exported model directory, with every listed file checked."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST
    if not path.is_file():
        raise MiaError(f"{model_dir}: not an exported mia model ({MANIFEST} not found)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise MiaError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise MiaError(f"{path}: not a mia export manifest (expected format {FORMAT})")
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


def model_digest(manifest: dict) -> str:
    """One sha256 naming this exact model (graphs + preprocessing), for cache keys."""
    files = json.dumps(manifest["files"], sort_keys=True)
    preprocessing = json.dumps([manifest["image"], manifest["text"], manifest["alignments"]], sort_keys=True)
    return hashlib.sha256((files + preprocessing).encode()).hexdigest()
