"""A searchable gallery: every image under a folder, encoded once and cached.

Encoding is the slow part of a search (a CNN per image; the query is one caption), so
features are cached per (model digest, gallery folder) in one ``.npz`` in the user's
cache folder (``$MIA_CACHE_DIR`` or ``~/.cache/mia``, under ``galleries/``; or in
``cache_dir``): a model folder may be read-only or shared, and is not where a cache of
someone's gallery belongs.  Each entry remembers the file's size and mtime, so a later run
encodes only new or changed files, drops removed ones, and a different model never sees
another model's features.  An unreadable file is reported and skipped, never fatal.

Torch-free, like :mod:`mia.export.runtime`: a deployment has no PyTorch.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mia.core import atomic
from mia.core.diskspace import DiskFull
from mia.core.errors import MiaError
from mia.core.paths import cache_dir as user_cache_dir
from mia.core.progress import Progress
from mia.export.runtime import EncodedImages, Retriever

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
CACHE_SUBDIR = "galleries"
FEATURE_PREFIX = "feature:"
SKIPPED_SHOWN = 3  # names listed in the "skipped" line; the rest are only counted

Stamp = tuple[int, int]  # (size in bytes, mtime in ns): what says a file changed


def list_gallery(folder: str | Path) -> list[Path]:
    """The gallery's images (recursive, by suffix, case-insensitive), in a stable order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MiaError(f"--gallery {folder}: no such directory")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise MiaError(f"--gallery {folder}: no {'/'.join(IMAGE_SUFFIXES)} images found")
    return paths


def cache_file(cache_dir: Path, digest: str, folder: Path) -> Path:
    """One file per (model, absolute gallery folder), so neither can see the other's features."""
    where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()
    return cache_dir / f"gallery-{digest[:16]}-{where[:16]}.npz"


@dataclass
class FeatureCache:
    """Features of one gallery by relative path, with the stamp each was computed from."""

    digest: str
    folder: str
    rows: dict[str, tuple[Stamp, int]] = field(default_factory=dict)  # relative path -> (stamp, row)
    features: EncodedImages | None = None

    @classmethod
    def load(cls, path: Path, digest: str, folder: str, feature_names: set[str], log=print) -> "FeatureCache":
        """The cache at ``path``, or an empty one (rebuilt by the caller) when it is absent,
        unreadable, someone else's, or inconsistent: a cache is only a speed-up, and
        features paired with the wrong file would be a wrong answer."""
        empty = cls(digest, folder)
        if not path.is_file():
            return empty
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["digest"]) != digest or str(data["folder"]) != folder:
                    return empty
                names, sizes, mtimes = data["paths"].tolist(), data["sizes"].tolist(), data["mtimes"].tolist()
                arrays = {k.removeprefix(FEATURE_PREFIX): data[k] for k in data.files if k.startswith(FEATURE_PREFIX)}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log(f"gallery: ignoring unreadable cache {path.name} ({type(exc).__name__}); rebuilding it")
            return empty
        consistent = (len(names) == len(set(names)) == len(sizes) == len(mtimes) and set(arrays) == feature_names
                      and all(a.dtype == np.float32 and a.ndim >= 2 and len(a) == len(names) and np.isfinite(a).all()
                              for a in arrays.values()))
        if not consistent:
            log(f"gallery: the cache {path.name} disagrees with its file list; rebuilding it")
            return empty
        rows = {name: ((size, mtime), row) for row, (name, size, mtime) in enumerate(zip(names, sizes, mtimes))}
        return cls(digest, folder, rows, EncodedImages(arrays) if rows else None)

    def lookup(self, name: str, stamp: Stamp) -> int | None:
        """The cached row of ``name`` if the file is unchanged since it was encoded."""
        entry = self.rows.get(name)
        return entry[1] if entry is not None and entry[0] == stamp else None

    def save(self, path: Path, names: list[str], stamps: list[Stamp], features: EncodedImages) -> None:
        arrays = {f"{FEATURE_PREFIX}{k}": v for k, v in features.arrays.items()}
        buffer = io.BytesIO()
        np.savez(buffer, digest=np.str_(self.digest), folder=np.str_(self.folder), paths=np.array(names, dtype=str),
                 sizes=np.array([s for s, _ in stamps], dtype=np.int64),
                 mtimes=np.array([m for _, m in stamps], dtype=np.int64), **arrays)
        atomic.write_bytes(path, buffer.getvalue())


def encode_readable(retriever: Retriever, paths: list[Path], batch_size: int = 64,
                    show_progress: bool = True) -> tuple[list[Path], EncodedImages | None, list[tuple[Path, str]]]:
    """Encode ``paths`` in batches; returns (encoded paths, their features, skipped (path, reason)).

    Each file is decoded on its own so that one broken file costs only itself, and only
    once: the decoded arrays of a batch go straight to the image encoder.
    """
    done, parts, skipped = [], [], []
    label = f"encode gallery ({retriever.providers[0]})"
    with Progress(len(paths), label, unit="img", enabled=show_progress and bool(paths)) as bar:
        for start in range(0, len(paths), batch_size):
            batch, arrays = paths[start:start + batch_size], []
            for path in batch:
                try:
                    arrays.append(retriever.preprocess_images([path])[0])
                    done.append(path)
                except Exception as exc:  # PIL raises many types for broken files; all mean "unreadable"
                    skipped.append((path, f"{type(exc).__name__}: {' '.join(str(exc).split())}"))
            if arrays:
                parts.append(retriever.encode_image_arrays(np.stack(arrays)))
            bar.update(len(batch))
    return done, EncodedImages.concat(parts) if parts else None, skipped


def describe_skipped(skipped: list[tuple[Path, str]]) -> str:
    """One line however many files are broken: the count, and the first few with their reason."""
    shown = ", ".join(f"{p.name} ({reason})" for p, reason in skipped[:SKIPPED_SHOWN])
    more = f" and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
    return f"skipped {len(skipped)} unreadable image(s): {shown}{more}"


@dataclass
class GalleryIndex:
    """The readable images of a gallery (``paths``) and their features, row for row."""

    paths: list[Path]
    features: EncodedImages
    skipped: list[tuple[Path, str]]
    reused: int
    encoded: int

    @classmethod
    def build(cls, retriever: Retriever, folder: str | Path, cache_dir: str | Path | None = None,
              log=print, show_progress: bool = True, batch_size: int = 64) -> "GalleryIndex":
        """Index ``folder``, reusing cached features of unchanged files and caching the result."""
        folder = Path(folder)
        paths = list_gallery(folder)
        names = [p.relative_to(folder).as_posix() for p in paths]
        stamps = [_stamp(p) for p in paths]
        cache_path = cache_file(Path(cache_dir) if cache_dir else user_cache_dir() / CACHE_SUBDIR,
                                retriever.digest, folder)
        cache = FeatureCache.load(cache_path, retriever.digest, str(folder.resolve()), retriever.gallery_features, log)
        cached_rows = [cache.lookup(n, s) for n, s in zip(names, stamps)]
        todo = [p for i, p in enumerate(paths) if cached_rows[i] is None]
        encoded_paths, encoded, skipped = encode_readable(retriever, todo, batch_size, show_progress)
        if skipped:
            log(f"gallery: {describe_skipped(skipped)}")
        new_rows = {p: row for row, p in enumerate(encoded_paths)}
        keep = [i for i, p in enumerate(paths) if cached_rows[i] is not None or p in new_rows]
        if not keep:
            raise MiaError(f"--gallery {folder}: none of the {len(paths)} images could be read "
                           f"({skipped[0][0].name}: {skipped[0][1]})")
        features = _merge(cache.features, encoded, [cached_rows[i] for i in keep],
                          [new_rows.get(paths[i]) for i in keep])
        index = cls([paths[i] for i in keep], features, skipped, reused=len(keep) - len(new_rows),
                    encoded=len(new_rows))
        if index.encoded or index.reused != len(cache.rows):
            _save_quietly(cache, cache_path, [names[i] for i in keep], [stamps[i] for i in keep], features, log)
        log(f"gallery: {len(index.paths)} images ({index.reused} from cache, {index.encoded} encoded)")
        return index


def _stamp(path: Path) -> Stamp:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _merge(cached: EncodedImages | None, encoded: EncodedImages | None,
           cached_rows: list[int | None], encoded_rows: list[int | None]) -> EncodedImages:
    """Rows of ``cached`` and ``encoded`` in gallery order (each position takes one of the two)."""
    offset = len(cached) if cached is not None else 0
    order = [c if c is not None else offset + e for c, e in zip(cached_rows, encoded_rows)]
    pool = EncodedImages.concat([f for f in (cached, encoded) if f is not None])
    return pool.subset(np.asarray(order, dtype=np.int64))


def _save_quietly(cache: FeatureCache, path: Path, names, stamps, features, log) -> None:
    """A read-only model directory or a full disk must not stop a search: the cache is only a speed-up."""
    try:
        cache.save(path, names, stamps, features)
    except (OSError, DiskFull) as exc:
        log(f"gallery: could not write the feature cache {path} ({getattr(exc, 'strerror', None) or exc}); "
            "pass --cache-dir to keep features between runs")
