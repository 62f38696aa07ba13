"""Where mia may write: the checks that keep whatever a user made out of harm's way.

Every command that writes a directory (``train``, ``ablate``, ``export``, ``data synth``,
``index``) or a page (``--html``) asks here first.  The rule is the same everywhere: mia
writes into a target that is new or empty, continues or replaces only what it recognises
as its own kind of output there (a run, an ablation, an export, a page it wrote), and
never touches a target that contains the input it is reading.  Anything else is refused
with one line naming the option, the path and what was found, before any work starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from mia.core.base.errors import MiaError

SHOWN = 4  # entries named in a refusal; the rest are counted

#: files a training run writes into its ``--out``
RUN_FILES = frozenset({"last.pt", "best.pt", "metrics.jsonl", "test-outcomes.npz", "config.toml", "tensorboard"})
#: what an ablation writes into its ``--out``
ABLATION_FILES = frozenset({"ablation.json", "ablation.md", "ablation.png", "ablation.toml", "runs"})
#: the generator tag of every page mia writes (``--html`` replaces only such pages)
PAGE_GENERATOR = '<meta name="generator" content="mia">'
EXPORT_FORMATS = ("mia-export/1", "mia-export/2")
EXPORT_MANIFEST = "manifest.json"
#: what an index directory holds besides its ``.npy`` feature arrays
INDEX_FILES = frozenset({"index.json", "paths.json", "faiss.index", "videos.json", "moments.json", "crops", "frames"})
#: what ``mia search`` may have cached inside an export
EXPORT_CACHE_DIR = "gallery-cache"


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _entries(folder: Path) -> list[str]:
    """Names in ``folder`` apart from mia's own temporary files (``.NAME.xxx.tmp``)."""
    return sorted(p.name for p in folder.iterdir() if not (p.name.startswith(".") and ".tmp" in p.name))


def _describe(names: Iterable[str]) -> str:
    names = sorted(names)
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def refuse_inputs_inside(option: str, target: Path, inputs: Iterable[str | Path]) -> None:
    """A target that contains (or is) an input being read is never written, forced or not."""
    for source in inputs:
        if source is not None and Path(source).exists() and _is_inside(Path(source), target):
            raise MiaError(f"{option} {target} contains {source}, which this command reads; choose another {option}")


def _existing_dir(option: str, target: Path) -> bool:
    """False when ``target`` is absent or an empty directory; True for a non-empty directory."""
    if not target.exists():
        return False
    if not target.is_dir():
        raise MiaError(f"{option} {target} is a file, expected a directory")
    return bool(_entries(target))


def _check_own_dir(target: str | Path, own: frozenset, kind: str) -> None:
    """New, empty, or holding only the files mia writes for ``kind``."""
    target = Path(target)
    if _existing_dir("--out", target):
        foreign = set(_entries(target)) - own
        if foreign:
            raise MiaError(f"--out {target} holds files that are not a mia {kind} ({_describe(foreign)}); "
                           "choose a new or empty directory")


def check_run_dir(target: str | Path) -> None:
    """``train --out``: new, empty, or a mia run directory (resumed or refused by the trainer)."""
    _check_own_dir(target, RUN_FILES, "run")


def check_ablation_dir(target: str | Path) -> None:
    """``ablate --out``: new, empty, or an ablation this command may resume."""
    _check_own_dir(target, ABLATION_FILES, "ablation")


def is_export(folder: Path) -> bool:
    """Whether ``folder`` holds a mia export and nothing else (its graphs, its manifest and
    the gallery cache ``mia search`` keeps beside them)."""
    try:
        manifest = json.loads((folder / EXPORT_MANIFEST).read_text(encoding="utf-8"))
        listed = set(manifest["files"]) if manifest.get("format") in EXPORT_FORMATS else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return False
    if listed is None:
        return False
    return set(_entries(folder)) <= listed | {EXPORT_MANIFEST, EXPORT_CACHE_DIR}


def check_export_dir(target: str | Path, force: bool, inputs: Iterable[str | Path] = ()) -> None:
    """``export --out``: new or empty; with ``force`` also a previous export, and nothing else."""
    target = Path(target)
    refuse_inputs_inside("--out", target, inputs)
    if not _existing_dir("--out", target):
        return
    if not force:
        raise MiaError(f"--out {target} exists and is not empty; pass --force to replace a previous export")
    if not is_export(target):
        foreign = set(_entries(target)) - {EXPORT_MANIFEST, EXPORT_CACHE_DIR}
        raise MiaError(f"--force replaces only a previous mia export, and --out {target} holds other files "
                       f"({_describe(foreign) or 'no valid manifest.json'}); choose another --out")


def check_index_dir(target: str | Path) -> None:
    """``index build --out``: new, empty, or an index that the build updates in place."""
    target = Path(target)
    if _existing_dir("--out", target):
        foreign = {name for name in _entries(target) if name not in INDEX_FILES and not name.endswith(".npy")}
        if foreign or not (target / "index.json").is_file():
            raise MiaError(f"--out {target} holds files that are not a mia index "
                           f"({_describe(foreign) or 'no index.json'}); choose a new or empty directory")


def check_new_dir(option: str, target: str | Path) -> None:
    """``data synth --out``: a directory that does not exist yet or is empty."""
    target = Path(target)
    if _existing_dir(option, target):
        raise MiaError(f"{option} {target} exists and is not empty; choose a new or empty directory")


def check_page_path(option: str, target: str | Path) -> None:
    """``--html PAGE``: a new file, or a page mia wrote earlier (so never a checkpoint, an
    image or anything else a user made, inputs included); never a directory."""
    target = Path(target)
    if target.is_dir():
        raise MiaError(f"{option} {target} is a directory, expected the path of an .html file to write")
    if target.exists():
        try:
            with open(target, encoding="utf-8", errors="replace") as handle:
                head = handle.read(4096)
        except OSError as exc:
            raise MiaError(f"{option} {target}: cannot read the existing file ({exc.strerror})") from None
        if PAGE_GENERATOR not in head:
            raise MiaError(f"{option} {target} exists and is not a page mia wrote; choose another path")
    if target.parent.exists() and not target.parent.is_dir():
        raise MiaError(f"{option} {target}: {target.parent} is a file, not a directory")
