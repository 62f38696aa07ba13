"""The encoded images of a folder: one store behind ``mia search --gallery``, ``mia index``
and ``mia serve`` (torch-free: ONNX Runtime, numpy, and FAISS for the first stage).

A store lists a folder, stamps each file (size, mtime), reuses the rows of unchanged files
from its previous version, encodes the rest in one loop (decoding in worker processes)
and keeps the arrays memory-mapped, so a million rows open at once.  Layout::

    index.json        format, model digest, gallery folder, entry count, FAISS settings
                      (null without a first stage), and every file's size and sha256
    paths.json        each entry's path (relative to the gallery), size and mtime
    image_global.npy  [N, D] float32: the encoder's global vectors
    image_parts.npy   [N, K, D] float16: the stripes, when the scorer reads them
    faiss.index       (an index only) the global vectors, L2-normalised (inner product = cosine)

Two kinds are made of it.  ``mia index build`` writes one where the user says, with FAISS
as a first stage: the top ``rerank`` entries by global cosine are re-scored by the model's
fused score (part, fine), as in every large retrieval system.  ``mia search --gallery``
keeps one per (model, folder) in the user's cache folder (``$MIA_CACHE_DIR`` or
``~/.cache/mia``, under ``galleries/``; a model folder may be read-only or shared, and is
not where a cache of someone's gallery belongs), without FAISS: every image is scored, right
for thousands.  Stripes are kept in float16: half the disk and page cache, and scoring
casts them back to float32 (how closely that agrees with float32 scoring: docs/deploy.md).

Building is incremental, can be split over processes that each encode a share
(``RANK``/``WORLD_SIZE``, as torchrun sets them) and joined by :func:`merge_shards`, and is
atomic: the store is written beside its destination and moved into place.  An unreadable
image is reported and skipped, never fatal.

Faults end cleanly.  The free space is checked against an estimate of the store before
anything is encoded, and each memory-mapped array reserves its blocks before it is
mapped (a full disk is then one line, not SIGBUS; see :mod:`mia.core.base.diskspace`); a
``--gallery`` search on a full disk encodes in memory instead.  The image-decoding workers
exit on their own when the building process dies, however it dies, and an error or Ctrl-C
in the building process cancels their pending work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mia.core.base import atomic, diskspace
from mia.core.base.errors import MiaError
from mia.core.training.outputs import refuse_inputs_inside
from mia.core.base.paths import cache_dir as user_cache_dir
from mia.core.data.preprocess import load_rgb, normalize_array, to_uint8_chw
from mia.core.base.progress import Progress
from mia.export.manifest import read_description, sha256_of
from mia.export.runtime import EncodedImages, Retriever

FORMAT = "mia-index/1"
META, PATHS, FAISS_FILE = "index.json", "paths.json", "faiss.index"
#: below this many entries the exact FAISS index is used: above it an exact search reads
#: every vector per query, which at a million entries is gigabytes of reads (docs/deploy.md)
FLAT_LIMIT = 100_000
HASHED_BYTES = 64 << 20  # files up to this size are hashed at every open; larger ones by `mia index verify`
STORED_DTYPES = {"image_global": np.float32, "image_parts": np.float16}
PARENT_POLL_SECONDS = 0.5  # how soon a decoding worker notices that the building process is gone
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
CACHE_SUBDIR = "galleries"
SKIPPED_SHOWN = 3  # names listed in the "skipped" line; the rest are only counted

Stamp = tuple[int, int]  # (size in bytes, mtime in ns): what says a file changed


def _faiss():
    try:
        import faiss
    except ImportError:
        raise MiaError("the gallery index needs FAISS: pip install 'mia-reid[serve]' (faiss-cpu)") from None
    return faiss


# --------------------------------------------------------------------------- the folder


def list_gallery(folder: str | Path) -> list[Path]:
    """The gallery's images (recursive, by suffix, case-insensitive), in a stable order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MiaError(f"--gallery {folder}: no such directory")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        from mia.export.footage import VIDEO_SUFFIXES

        videos = any(p.suffix.lower() in VIDEO_SUFFIXES for p in folder.rglob("*"))
        hint = "; it holds videos: index them with 'mia index build --video'" if videos else ""
        raise MiaError(f"--gallery {folder}: no {'/'.join(IMAGE_SUFFIXES)} images found{hint}")
    return paths


def _stamp(path: Path) -> Stamp:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def describe_skipped(skipped: list[tuple[Path, str]]) -> str:
    """One line however many files are broken: the count, and the first few with their reason."""
    shown = ", ".join(f"{p.name} ({reason})" for p, reason in skipped[:SKIPPED_SHOWN])
    more = f" and {len(skipped) - SKIPPED_SHOWN} more" if len(skipped) > SKIPPED_SHOWN else ""
    return f"skipped {len(skipped)} unreadable image(s): {shown}{more}"


# --------------------------------------------------------------------------- FAISS


def faiss_settings(entries: int, kind: str = "auto") -> dict:
    """Which FAISS index: exact (flat) below :data:`FLAT_LIMIT`, inverted lists (ivf) above."""
    if kind == "auto":
        kind = "flat" if entries < FLAT_LIMIT else "ivf"
    if kind == "ivf":
        lists = max(1, min(entries // 39, int(4 * entries ** 0.5)))  # FAISS wants >= 39 points per list
        return {"kind": "ivf", "lists": lists, "probe": max(1, min(lists, 32))}
    if kind == "hnsw":
        return {"kind": "hnsw", "neighbours": 32, "search_depth": 128}
    return {"kind": "flat"}


def unit_rows(rows: np.ndarray) -> np.ndarray:
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def build_faiss(vectors: np.ndarray, settings: dict, chunk: int = 65536):
    """A FAISS index over the unit-normalised ``vectors`` (added in chunks: no second copy in RAM)."""
    faiss = _faiss()
    dim = vectors.shape[1]
    if settings["kind"] == "ivf":
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, settings["lists"], faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(len(vectors), size=min(len(vectors), 64 * settings["lists"]),
                                                 replace=False)
        index.train(unit_rows(vectors[np.sort(sample)]))
    elif settings["kind"] == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings["neighbours"], faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexFlatIP(dim)
    for start in range(0, len(vectors), chunk):
        index.add(unit_rows(vectors[start:start + chunk]))
    return index


def _tune(index, settings: dict) -> None:
    if settings["kind"] == "ivf":
        index.nprobe = settings["probe"]
    elif settings["kind"] == "hnsw":
        index.hnsw.efSearch = settings["search_depth"]


# --------------------------------------------------------------------------- reading


@dataclass
class GalleryStore:
    """An opened store: entry paths (under ``gallery``), memory-mapped features, and the
    FAISS first stage when it has one (``faiss`` is None otherwise, and for a store held in
    memory ``root`` is None too)."""

    root: Path | None
    meta: dict
    gallery: Path
    paths: list[Path]
    stamps: list[Stamp]
    arrays: dict[str, np.ndarray]
    faiss: object | None
    _every_row: dict[str, np.ndarray] | None = field(default=None, repr=False)
    #: entries whose image is looked for by :meth:`check_gallery`
    GALLERY_SAMPLE = 64

    def __len__(self) -> int:
        return len(self.paths)

    def check_gallery(self, sample: int = GALLERY_SAMPLE) -> str | None:
        """Whether the indexed images are where the index says, from ``sample`` entries
        spread evenly over it (first and last included): a gallery that moved or vanished
        is an error naming the way out, a few missing files a warning (returned: they
        answer 404 until the index is rebuilt).  A sample keeps a million entries fast."""
        from mia.core.base.display import displayable

        picked = np.unique(np.linspace(0, len(self) - 1, min(sample, len(self))).round().astype(np.int64))
        missing = [self.paths[i] for i in picked if not self.paths[i].is_file()]
        if not missing:
            return None
        found = f"{len(missing)} of {len(picked)} sampled images are missing (e.g. {displayable(missing[0])})"
        if len(missing) < len(picked):
            return (f"index {self.root}: {found}; rebuild it with 'mia index build' to drop them "
                    "(until then they answer 404)")
        if self.gallery != recorded_gallery(self.root, self.meta):
            raise MiaError(f"--gallery-root {self.gallery}: {found}; give the folder that now holds what "
                           f"{self.meta['gallery']} held, or rebuild the index with 'mia index build'")
        raise MiaError(f"index {self.root}: its gallery {self.gallery} moved or is gone ({found}); "
                       "pass --gallery-root NEW_FOLDER where the images are now, or rebuild it with 'mia index build'")

    def candidates(self, query_global: np.ndarray, count: int) -> np.ndarray:
        """First stage: entry ids of the ``count`` best global cosines, best first."""
        _, ids = self.faiss.search(unit_rows(query_global.reshape(1, -1)), min(count, len(self)))
        return ids[0][ids[0] >= 0]

    def rank(self, retriever: Retriever, query: str, top_k: int, rerank: int | None = None) -> list[tuple[Path, float]]:
        """The ``top_k`` best (path, score), best first, by the model's fused score: over the
        ``rerank`` best global cosines of the FAISS first stage, or over every entry (a
        store without FAISS, or ``rerank`` None)."""
        rows, scores = self.ranked_rows(retriever, query, top_k, rerank)
        return [(self.paths[row], float(score)) for row, score in zip(rows, scores)]

    def ranked_rows(self, retriever: Retriever, query: str, top_k: int, rerank: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`rank` as entry numbers and scores."""
        text = retriever.encode_texts([query])
        if self.faiss is None or rerank is None:
            rows, features = np.arange(len(self)), self.every_row()
        else:
            rows = self.candidates(text["text_global"][0], max(rerank, top_k))
            features = self.features(rows)
        scores = retriever.score(text, EncodedImages(features))[0]
        order = np.argsort(-scores, kind="stable")[:top_k]
        return rows[order], scores[order]

    def every_row(self) -> dict[str, np.ndarray]:
        """Every entry's features in float32, read once: a store searched exhaustively holds
        a folder of thousands, which fits in memory, and a server asks for it per query."""
        if self._every_row is None:
            self._every_row = {name: np.asarray(array, dtype=np.float32) for name, array in self.arrays.items()}
        return self._every_row

    def features(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        order = np.argsort(rows)  # memory maps read fastest in file order
        picked = {name: np.asarray(array[rows[order]], dtype=np.float32) for name, array in self.arrays.items()}
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return {name: value[inverse] for name, value in picked.items()}


class DamagedStore(MiaError):
    """A store whose files are missing, altered or disagree: rebuilt where mia owns it (the
    ``--gallery`` cache), one line naming the way out where the user does (an index)."""


def _damaged(root: Path, why: str) -> DamagedStore:
    return DamagedStore(f"index {root}: {why}; rebuild it with 'mia index build'")


def read_meta(root: Path) -> dict:
    meta = read_description(root, META, "a mia index", lambda why: _damaged(root, f"{META} is {why}"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("files"), dict):
        raise _damaged(root, f"{META} is not a mia index description (expected format {FORMAT})")
    return meta


def _check_files(root: Path, meta: dict, full: bool) -> None:
    for name, expected in meta["files"].items():
        path = root / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise _damaged(root, f"{name} is missing")
        if path.stat().st_size != expected["bytes"]:
            raise _damaged(root, f"{name} has {path.stat().st_size} bytes, {expected['bytes']} were written")
        if (full or expected["bytes"] <= HASHED_BYTES) and sha256_of(path) != expected["sha256"]:
            raise _damaged(root, f"{name}: sha256 mismatch (the file changed after it was written)")


def recorded_gallery(root: Path | None, meta: dict) -> Path:
    """The gallery folder an index records: relative to the index (footage, whose crops it
    holds) or absolute (a folder index); a store without a folder of its own has it as is."""
    return root / meta["gallery"] if root else Path(meta["gallery"])


def open_store(root: str | Path, retriever: Retriever | None = None, verify: bool = False,
               gallery_root: str | Path | None = None) -> GalleryStore:
    """Open a store, checking sizes (and the sha256 of small files, of all with ``verify``)
    and that it was built by ``retriever``'s model: a damaged or foreign index is one line,
    never a wrong answer.  ``gallery_root`` is where the gallery is now, when it moved since
    the build: entries are stored relative to the gallery folder, so they follow it."""
    root = Path(root)
    if gallery_root is not None and not Path(gallery_root).is_dir():
        raise MiaError(f"--gallery-root {gallery_root}: no such directory")
    meta = read_meta(root)
    if retriever is not None and meta.get("model_digest") != retriever.digest:
        raise MiaError(f"index {root} was built with another model than {retriever.model_dir}; "
                       "rebuild it with 'mia index build'")
    _check_files(root, meta, verify)
    try:
        entries = json.loads((root / PATHS).read_text(encoding="utf-8"))
        arrays = {name: np.load(root / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in meta["features"]}
        index = _faiss().read_index(str(root / FAISS_FILE)) if meta.get("faiss") is not None else None
    except (OSError, ValueError, RuntimeError) as exc:
        raise _damaged(root, f"cannot read it ({type(exc).__name__}: {str(exc).splitlines()[0][:100]})") from None
    count = meta["entries"]
    if (len(entries) != count or (index is not None and index.ntotal != count)
            or any(len(a) != count for a in arrays.values())):
        raise _damaged(root, "its files disagree on the number of entries")
    if index is not None:
        _tune(index, meta["faiss"])
    folder = Path(gallery_root).resolve() if gallery_root is not None else recorded_gallery(root, meta)
    return GalleryStore(root, meta, folder, [folder / e["path"] for e in entries],
                        [(e["size"], e["mtime"]) for e in entries], arrays, index)


# --------------------------------------------------------------------------- building


def _new_array(path: Path, shape: tuple[int, ...], dtype) -> np.memmap:
    """A new ``.npy`` file, memory-mapped for writing, whose blocks are reserved before it
    is mapped: ``open_memmap`` makes a sparse file, and a full disk is then found only by
    the page write that needs a block, as SIGBUS."""
    dtype = np.dtype(dtype)
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                    "fortran_order": False, "shape": shape})
        diskspace.reserve(file.fileno(), file.tell() + math.prod(shape) * dtype.itemsize)
    return np.lib.format.open_memmap(path, mode="r+")


def _row_bytes(retriever: Retriever) -> dict[str, int]:
    """Bytes one entry takes in each stored array, from the image encoder's declared output shapes."""
    shapes = {o["name"]: o["shape"][1:] for o in retriever.manifest["graphs"]["image_encoder"]["outputs"]}
    return {name: math.prod(d for d in shapes[name] if isinstance(d, int))
            * np.dtype(STORED_DTYPES.get(name, np.float32)).itemsize for name in retriever.gallery_features}


def _estimated_bytes(retriever: Retriever, folder: Path, paths: list[Path], kind: str | None) -> int:
    """About what a store of ``paths`` takes on disk: the feature arrays, the FAISS first
    stage if any (the global vectors in float32, plus ids for ivf and neighbour links for
    hnsw) and the entry list."""
    rows = _row_bytes(retriever)
    dim = rows["image_global"] // np.dtype(STORED_DTYPES["image_global"]).itemsize
    settings = faiss_settings(len(paths), kind) if kind is not None else None
    faiss_entry = 0 if settings is None else (4 * dim + (8 if settings["kind"] == "ivf" else 0)
                                              + 8 * settings.get("neighbours", 0))
    listing = sum(len(p.relative_to(folder).as_posix()) + 64 for p in paths)  # {"path": ..., "size": ..., "mtime": ...}
    return len(paths) * (sum(rows.values()) + faiss_entry) + listing


def _die_with(parent: int) -> None:
    """In a decoding worker: exit as soon as ``parent`` (the building process) is gone.  A
    worker would otherwise outlive a parent killed by SIGKILL or a crash: it holds both ends
    of the pool's queues, so it never sees them close."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@contextlib.contextmanager
def _children_ignore_ctrl_c():
    """Processes started in this block are born ignoring SIGINT (an ignored signal stays
    ignored through exec, and Python then installs no KeyboardInterrupt handler).  Ctrl-C
    reaches every process of the terminal's group: the building process cancels the pool's
    work and shuts it down, where a worker still starting up would print a traceback of its
    own.  Only the main thread may set handlers; elsewhere the block changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _decode(task: tuple[str, tuple[int, int]]) -> tuple[np.ndarray | None, str | None]:
    """In a worker: one image as uint8 CHW pixels, or why it cannot be read."""
    path, size = task
    try:
        return to_uint8_chw(load_rgb(path), size), None
    except Exception as exc:  # PIL raises many types for broken files; all mean "unreadable"
        return None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:100]}"


def _encode(retriever: Retriever, paths: list[Path], workers: int, batch: int, show_progress: bool, log, label: str):
    """Yield (position in ``paths``, encoded features) for every readable image; images
    are decoded in ``workers`` processes while ONNX Runtime encodes in this one."""
    skipped = []
    tasks = [(str(p), tuple(retriever.image_size)) for p in paths]
    pool, decoded = None, map(_decode, tasks)
    if workers > 0 and len(paths) > batch:
        # spawned, not forked: this process runs ONNX Runtime's threads, which a fork would copy mid-flight
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_die_with,
                                   initargs=(os.getpid(),))
        with _children_ignore_ctrl_c():  # map submits every task now, which starts the workers
            decoded = pool.map(_decode, tasks, chunksize=16)
    try:
        with Progress(len(paths), f"encode gallery ({retriever.providers[0]})", unit="img",
                      enabled=show_progress and bool(paths)) as bar:
            pending, positions = [], []
            for position, (pixels, error) in enumerate(decoded):
                if error:
                    skipped.append((paths[position], error))
                else:
                    pending.append(pixels)
                    positions.append(position)
                if len(pending) == batch or (position == len(paths) - 1 and pending):
                    images = normalize_array(np.stack(pending), retriever.mean, retriever.std)
                    yield positions, retriever.encode_image_arrays(images).arrays
                    pending, positions = [], []
                bar.update()
    finally:  # an error or Ctrl-C here or in the consumer leaves nothing to decode
        if pool:
            pool.shutdown(cancel_futures=True)
    if skipped:
        log(f"{label}: {describe_skipped(skipped)}")


def _previous_rows(out: Path, retriever: Retriever, folder: Path, label: str, log) -> tuple[dict, GalleryStore | None]:
    """relative path -> (stamp, row) of an earlier store of this model and gallery in ``out``."""
    if not (out / META).is_file():
        return {}, None
    try:
        previous = open_store(out, retriever)
    except DamagedStore as exc:
        log(f"{label}: ignoring the damaged store {out} ({exc}); encoding again")
        return {}, None
    except MiaError:
        return {}, None  # another model's: rebuilt from scratch
    if Path(previous.meta["gallery"]) != folder:
        return {}, None
    rows = {p.relative_to(folder).as_posix(): (stamp, row)
            for row, (p, stamp) in enumerate(zip(previous.paths, previous.stamps))}
    return rows, previous


def _write_meta(tmp: Path, meta: dict) -> None:
    meta["files"] = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_of(p)}
                     for p in sorted(tmp.iterdir()) if p.name != META and p.is_file()}
    atomic.write_text(tmp / META, json.dumps(meta, indent=1))


def finish_store(tmp: Path, folder: Path, paths: list[Path], stamps: list[Stamp], arrays: dict,
                 kind: str | None, meta: dict, gallery: str | None = None) -> dict | None:
    """Write the entry list, the FAISS first stage over ``arrays["image_global"]`` (unless
    ``kind`` is None) and ``index.json`` (last, with every file's size and sha256) into ``tmp``.
    ``gallery`` is what the index records as its gallery folder: ``folder`` unless given (a
    video index records its crops folder relative to itself, so the crops move with it)."""
    entries = [{"path": p.relative_to(folder).as_posix(), "size": s, "mtime": m} for p, (s, m) in zip(paths, stamps)]
    (tmp / PATHS).write_text(json.dumps(entries))
    settings = faiss_settings(len(paths), kind) if kind is not None else None
    if settings is not None:
        faiss = _faiss()
        with open(tmp / FAISS_FILE, "wb") as file:  # through Python: a full disk is an ENOSPC, not FAISS's RuntimeError
            faiss.write_index(build_faiss(arrays["image_global"], settings), faiss.PyCallbackIOWriter(file.write))
    _write_meta(tmp, {"format": FORMAT, **meta, "gallery": gallery or str(folder), "entries": len(paths),
                      "faiss": settings})
    return settings


def shard_path(out: Path, rank: int, world_size: int) -> Path:
    """Where process ``rank`` of ``world_size`` writes its share: beside the index."""
    return out.with_name(f"{out.name}.shard-{rank}-of-{world_size}")


def build_index(retriever: Retriever, gallery: str | Path, out: str | Path, kind: str = "auto", workers: int = 0,
                batch: int = 64, rank: int = 0, world_size: int = 1, log=print, show_progress: bool = True) -> Path:
    """``mia index build``: the store of the images under ``gallery``, with a FAISS first
    stage, in ``out`` (this process's share, written to :func:`shard_path`, when
    ``world_size`` > 1), reusing an earlier store's rows of unchanged files."""
    folder, out = Path(gallery).resolve(), Path(out)
    target = shard_path(out, rank, world_size) if world_size > 1 else out
    refuse_inputs_inside("--out", target, [folder, retriever.model_dir])
    check_index_dir(target)
    paths = list_gallery(folder)[rank::world_size]
    count, reused, settings, _ = _build(retriever, folder, paths, target, kind, {"rank": rank, "world_size": world_size},
                                        workers, batch, show_progress, log, label="index")
    log(f"index {target}: {count} images ({reused} reused, {count - reused} encoded), FAISS {settings['kind']}")
    return target


def cache_location(cache_dir: str | Path | None, digest: str, folder: Path) -> Path:
    """One store per (model, absolute gallery folder), so neither can see the other's features."""
    where = hashlib.sha256(str(folder).encode()).hexdigest()
    return (Path(cache_dir) if cache_dir else user_cache_dir() / CACHE_SUBDIR) / f"gallery-{digest[:16]}-{where[:16]}"


def cached_store(retriever: Retriever, gallery: str | Path, cache_dir: str | Path | None = None, log=print,
                 show_progress: bool = True, batch: int = 64) -> GalleryStore:
    """``mia search --gallery``: the store of a folder in the cache, brought up to date
    (unchanged files reused, new and changed ones encoded, removed ones dropped).  A cache
    is only a speed-up: where it cannot be written (a full disk, a read-only folder) the
    gallery is encoded in memory for this search, and a damaged one is encoded again."""
    paths = list_gallery(gallery)
    folder = Path(gallery).resolve()
    paths = [folder / p.relative_to(gallery) for p in paths]
    target = cache_location(cache_dir, retriever.digest, folder)
    _drop_earlier_cache(target, log)
    try:
        count, reused, _, unchanged = _build(retriever, folder, paths, target, None, {"rank": 0, "world_size": 1}, 0,
                                             batch, show_progress, log, label="gallery")
        store = unchanged or open_store(target, retriever)
    except (OSError, diskspace.DiskFull) as exc:
        log(f"gallery: could not write the feature cache {target} ({getattr(exc, 'strerror', None) or exc}); "
            "encoding in memory for this search (pass --cache-dir to keep features between runs)")
        store = _in_memory_store(retriever, folder, paths, batch, show_progress, log)
        count, reused = len(store), 0
    log(f"gallery: {count} images ({reused} from cache, {count - reused} encoded)")
    return store


def _drop_earlier_cache(target: Path, log) -> None:
    """The one-file ``.npz`` feature cache that earlier versions kept for the same model and
    folder: replaced by the store, said once, never read (its rows would be encoded again
    anyway, and reading a second format would keep a second reader alive)."""
    earlier = target.with_name(f"{target.name}.npz")
    if earlier.is_file():
        log(f"gallery: replacing the feature cache of an earlier mia version ({earlier.name}); encoding the gallery again")
        earlier.unlink(missing_ok=True)


def _in_memory_store(retriever: Retriever, folder: Path, paths: list[Path], batch: int, show_progress: bool,
                     log) -> GalleryStore:
    """Every readable image encoded in memory (the same loop as a store on disk), for a
    search whose cache cannot be written."""
    parts: dict[str, list[np.ndarray]] = {}
    kept: list[int] = []
    with contextlib.closing(_encode(retriever, paths, 0, batch, show_progress, log, "gallery")) as encoded:
        for positions, features in encoded:
            kept += positions
            for name, value in features.items():
                parts.setdefault(name, []).append(value.astype(STORED_DTYPES.get(name, np.float32)))
    if not kept:
        raise MiaError(f"--gallery {folder}: none of the {len(paths)} images could be read")
    arrays = {name: np.concatenate(values) for name, values in parts.items()}
    return GalleryStore(None, {"gallery": str(folder), "faiss": None}, folder, [paths[i] for i in kept],
                        [_stamp(paths[i]) for i in kept], arrays, None)


def _build(retriever: Retriever, folder: Path, paths: list[Path], target: Path, kind: str | None, shard: dict,
           workers: int, batch: int, show_progress: bool, log, label: str
           ) -> tuple[int, int, dict | None, GalleryStore | None]:
    """Bring the store at ``target`` up to date with ``paths``; returns (entries, rows
    reused, FAISS settings, the store when it had nothing to change: it is left as it is,
    and already open, so a search of an unchanged gallery checks its files once)."""
    stamps = [_stamp(p) for p in paths]
    reusable, previous = _previous_rows(target, retriever, folder, label, log)
    old_rows = [reusable.get(p.relative_to(folder).as_posix(), (None, None)) for p in paths]
    old_rows = [row if stamp == s else None for (stamp, row), s in zip(old_rows, stamps)]
    settings = faiss_settings(len(paths), kind) if kind is not None else None
    if (previous is not None and old_rows == list(range(len(previous))) and previous.meta.get("faiss") == settings
            and previous.meta.get("shard") == shard):
        return len(paths), len(paths), settings, previous
    needed = _estimated_bytes(retriever, folder, paths, kind)
    with atomic.atomic_directory(target, replace=True, needed=needed, what=label) as tmp:
        arrays, kept = _fill_arrays(tmp, retriever, paths, old_rows, previous, workers, batch, show_progress, log, label)
        if not any(kept):
            raise MiaError(f"--gallery {folder}: none of the {len(paths)} images could be read")
        paths = [p for p, keep in zip(paths, kept) if keep]
        stamps = [s for s, keep in zip(stamps, kept) if keep]
        settings = finish_store(tmp, folder, paths, stamps, arrays, kind,
                                {"model_digest": retriever.digest, "features": sorted(arrays), "shard": shard})
        del arrays
    reused = sum(1 for row, keep in zip(old_rows, kept) if row is not None and keep)
    return len(paths), reused, settings, None


def _fill_arrays(tmp, retriever, paths, old_rows, previous, workers, batch, show_progress, log, label):
    """Every feature array in gallery order, written in place: rows of unchanged files
    copied from the earlier store, the others encoded straight into their row (so a
    million-image gallery never sits in memory).  Returns the arrays and which rows hold
    a readable image; unreadable ones are squeezed out at the end."""
    todo = [i for i, row in enumerate(old_rows) if row is None]
    kept = [row is not None for row in old_rows]
    arrays: dict[str, np.ndarray] = {}

    def allocate(shapes: dict[str, tuple[int, ...]]) -> None:
        for name, shape in shapes.items():
            arrays[name] = _new_array(tmp / f"{name}.npy", (len(paths), *shape), STORED_DTYPES.get(name, np.float32))

    if previous is not None:
        allocate({name: array.shape[1:] for name, array in previous.arrays.items()})
        for i, row in enumerate(old_rows):
            if row is not None:
                for name, array in arrays.items():
                    array[i] = previous.arrays[name][row]
    # closed on the way out, error or not: the decoding pool stops now, not when the generator is collected
    encoding = _encode(retriever, [paths[i] for i in todo], workers, batch, show_progress, log, label)
    with contextlib.closing(encoding) as encoded:
        for positions, features in encoded:
            if not arrays:
                allocate({name: value.shape[1:] for name, value in features.items()})
            rows = [todo[p] for p in positions]
            for name, value in features.items():
                arrays[name][rows] = value
            for row in rows:
                kept[row] = True
    if not all(kept) and arrays:
        arrays = _squeeze(tmp, arrays, np.flatnonzero(kept))
    for array in arrays.values():
        array.flush()
    return arrays, kept


def _squeeze(tmp: Path, arrays: dict, rows: np.ndarray) -> dict:
    squeezed = {}
    for name, array in arrays.items():
        kept = _new_array(tmp / f"{name}.kept.npy", (len(rows), *array.shape[1:]), array.dtype)
        kept[:] = array[rows]
        kept.flush()
        del array
        os.replace(tmp / f"{name}.kept.npy", tmp / f"{name}.npy")
        squeezed[name] = np.load(tmp / f"{name}.npy", mmap_mode="r")
    return squeezed


def check_index_dir(target: Path) -> None:
    """An index is written into a new or empty directory or over an earlier index."""
    from mia.core.training.outputs import check_index_dir as check

    check(target)


def merge_shards(out: str | Path, kind: str = "auto", log=print) -> Path:
    """Join the shards beside ``out`` (built with the same model and gallery by processes
    0..N-1 of N) into the index ``out``, entries in gallery order, as one build would."""
    out = Path(out)
    shard_dirs = sorted(out.parent.glob(f"{out.name}.shard-*-of-*"))
    if not shard_dirs:
        raise MiaError(f"{out}: no shards to merge (expected {out.name}.shard-RANK-of-WORLD beside it, written by "
                       "'mia index build' under WORLD_SIZE > 1)")
    shards = [open_store(d) for d in shard_dirs]
    first = shards[0].meta
    world = first["shard"]["world_size"]
    ranks = sorted(s.meta["shard"]["rank"] for s in shards)
    if ranks != list(range(world)) or any(s.meta["shard"]["world_size"] != world for s in shards):
        raise MiaError(f"{out}: expected shards 0..{world - 1} of {world} beside it, found ranks {ranks}")
    for shard in shards[1:]:
        for key in ("model_digest", "gallery", "features"):
            if shard.meta[key] != first[key]:
                raise MiaError(f"{shard.root}: built with another {key.replace('_', ' ')} than {shards[0].root}")
    check_index_dir(out)
    order = sorted((p, s, r) for s, shard in enumerate(shards) for r, p in enumerate(shard.paths))
    needed = sum(entry["bytes"] for shard in shards for entry in shard.meta["files"].values())
    with atomic.atomic_directory(out, replace=True, needed=needed, what="index") as tmp:
        arrays = {}
        for name in first["features"]:
            template = shards[0].arrays[name]
            arrays[name] = _new_array(tmp / f"{name}.npy", (len(order), *template.shape[1:]), template.dtype)
            for s, shard in enumerate(shards):  # each shard's rows, in one vectorised copy
                rows = [row for row, (_, owner, _) in enumerate(order) if owner == s]
                arrays[name][rows] = shard.arrays[name][[r for _, owner, r in order if owner == s]]
            arrays[name].flush()
        settings = finish_store(tmp, Path(first["gallery"]), [p for p, _, _ in order],
                                [shards[s].stamps[r] for _, s, r in order], arrays, kind,
                                {"model_digest": first["model_digest"], "features": first["features"],
                                 "shard": {"rank": 0, "world_size": 1}})
        del arrays
    log(f"index {out}: merged {len(shards)} shards, {len(order)} images, FAISS {settings['kind']}")
    return out
