"""Writing a synthpedes data set to disk in the CUHK-PEDES layout.

The output is what the CUHK-PEDES loader reads (``imgs/`` plus ``reid_raw.json``), so the
demo and the test suite exercise the same code path as the real data set.  A second
annotation file, ``reid_raw_unseen.json`` (:data:`UNSEEN_ANNOTATION_FILE`), lists the same
images, ids and splits with the test captions written in the held-out wording (see
``wording.py``): the "unseen words" test of ``--data synthpedes-unseen``.  Train and val
entries are identical in both files, so a model trained on either is the same model.

Generation is deterministic for a seed: identities come from one ``random.Random(seed)``
and every image (and its captions) from an RNG seeded by (seed, id, image index), so
results do not depend on generation order.  The data set appears atomically: it is built
in a hidden sibling directory that is renamed into place only when complete.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import textwrap
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from PIL import Image, ImageDraw, ImageFont

from .attributes import ATTRIBUTE_FIELDS, Identity, sample_group
from .captions import make_captions, tokenize
from .render import render_jpeg
from .wording import HELD_OUT

ANNOTATION_FILE = "reid_raw.json"
UNSEEN_ANNOTATION_FILE = "reid_raw_unseen.json"
IDENTITY_FILE = "identities.json"
TWINS_FILE = "twins.json"  # hard-negative pairs: what twin accuracy measures
IMAGE_DIR = "imgs"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SynthConfig:
    """Size and randomness of a synthetic data set; invalid values raise ``ValueError``."""

    ids: int = 400  # identities in total
    images_per_id: int = 4  # images per identity (each with 2 captions)
    val_fraction: float = 0.1  # share of identities in val (when val_ids is None)
    test_fraction: float = 0.25  # share of identities in test (when test_ids is None)
    val_ids: int | None = None  # identities in val (instead of the fraction)
    test_ids: int | None = None  # identities in test (instead of the fraction)
    seed: int = 0
    height: int = 192  # nominal crop height in pixels; actual crops vary +-25%
    hard_negative_fraction: float = 0.3  # share of identities made as hard negatives of another one

    def __post_init__(self):
        if self.ids < 3:
            raise ValueError(f"SynthConfig.ids must be at least 3 (one identity per split), got {self.ids}")
        if self.images_per_id < 1:
            raise ValueError(f"SynthConfig.images_per_id must be at least 1, got {self.images_per_id}")
        if self.height < 32:
            raise ValueError(f"SynthConfig.height must be at least 32 pixels, got {self.height}")
        for name in ("val_fraction", "test_fraction", "hard_negative_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"SynthConfig.{name} must be in [0, 1), got {value}")
        for name in ("val_ids", "test_ids"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"SynthConfig.{name} must be at least 1, got {getattr(self, name)}")
        sizes = self.split_sizes()
        for split in ("val", "test"):
            name = f"{split}_ids" if getattr(self, f"{split}_ids") is not None else f"{split}_fraction"
            if sizes[split] < 1:
                raise ValueError(f"SynthConfig.{name}={getattr(self, name)} gives no {split} identity out of ids={self.ids}")
        if sizes["train"] < 1:
            raise ValueError(f"SynthConfig: {sizes['val']} val and {sizes['test']} test identities leave no train "
                             f"identity out of ids={self.ids}")

    def split_sizes(self) -> dict[str, int]:
        """Identities per split: the counts when given, else the fractions (a non-zero
        fraction gets at least one, which keeps ``ids=3`` usable for smoke tests); train
        gets the rest."""
        val, test = (count if count is not None else (max(1, round(self.ids * fraction)) if fraction > 0 else 0)
                     for count, fraction in ((self.val_ids, self.val_fraction), (self.test_ids, self.test_fraction)))
        return {"train": self.ids - val - test, "val": val, "test": test}


#: the built-in ``--data synthpedes``: a test split large enough that test sampling alone
#: moves R@1 by less than a point (standard error; docs/datasets.md has the measurement),
#: a validation split that picks epochs with half that noise on mAP, and 300 training
#: identities so that the demo trains in minutes on a CPU
DEFAULT_SET = SynthConfig(ids=1850, val_ids=250, test_ids=1300)


def build_identities(config: SynthConfig) -> dict[int, dict]:
    """id -> attribute dict (plus split and hard-negative provenance), ids 1-based.

    Ids are consecutive per split (train, then val, then test).  Each split is sampled as
    its own group so that its hard negatives are derived from identities of that split.
    """
    rng = random.Random(config.seed)
    identities: dict[int, dict] = {}
    first_id = 1
    for split, size in config.split_sizes().items():
        for offset, member in enumerate(sample_group(rng, size, config.hard_negative_fraction)):
            identities[first_id + offset] = {
                "split": split,
                **member.identity.to_dict(),
                "derived_from": None if member.derived_from is None else first_id + member.derived_from,
                "derivation": member.derivation,
            }
        first_id += size
    return identities


def _image_rng(seed: int, pid: int, index: int, purpose: str) -> random.Random:
    """An RNG for one image that depends only on (seed, id, index), not on generation order."""
    return random.Random(f"synthpedes/{seed}/{pid}/{index}/{purpose}")


def _entry(split: str, pid: int, file_path: str, captions: list[str]) -> dict:
    """One CUHK-PEDES annotation entry."""
    return {
        "split": split,
        "captions": captions,
        "file_path": file_path,
        "processed_tokens": [tokenize(caption) for caption in captions],
        "id": pid,
    }


def _render_identity(root: Path, config: SynthConfig, pid: int, record: dict) -> tuple[list[dict], list[dict]]:
    """Render and save one identity's images; return its entries of both annotation files.

    Held-out captions have their own RNG, so the training captions of an image are the
    same whether or not its split gets held-out ones.
    """
    identity = Identity(**{field: record[field] for field in ATTRIBUTE_FIELDS})
    split, entries, unseen_entries = record["split"], [], []
    for index in range(config.images_per_id):
        jpeg, view = render_jpeg(identity, _image_rng(config.seed, pid, index, "image"), config.height)
        file_path = f"{split}/{pid}_{index}.jpg"
        (root / IMAGE_DIR / file_path).write_bytes(jpeg)
        captions = make_captions(identity, _image_rng(config.seed, pid, index, "captions"), view)
        entries.append(_entry(split, pid, file_path, captions))
        if split == "test":
            rng = _image_rng(config.seed, pid, index, "unseen captions")
            unseen_entries.append(_entry(split, pid, file_path, make_captions(identity, rng, view, HELD_OUT)))
        else:
            unseen_entries.append(entries[-1])
    return entries, unseen_entries


def _write_images(
    root: Path, config: SynthConfig, identities: dict[int, dict], progress, workers: int
) -> tuple[list[dict], list[dict]]:
    """Render every identity, in ``workers`` processes when more than one (drawing is pure
    Python, so threads would queue on the GIL); return the entries of both annotation files.

    Results are taken in identity order and every image has its own RNG, so the files are
    byte for byte the same whatever the number of workers.
    """
    for split in SPLITS:
        (root / IMAGE_DIR / split).mkdir(parents=True)
    total, done, entries, unseen_entries = len(identities) * config.images_per_id, 0, [], []
    render = partial(_render_identity, root, config)
    # spawned, not forked: a process forked from one that runs other threads (torch's, ONNX
    # Runtime's, a server's) can inherit a lock held mid-flight and hang for good
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers > 1 else None
    try:
        results = (pool.map(render, identities, identities.values(), chunksize=16) if pool
                   else map(render, identities, identities.values()))
        for ours, unseen in results:
            entries += ours
            unseen_entries += unseen
            for _ in ours:
                done += 1
                if progress is not None:
                    progress(done, total)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return entries, unseen_entries


def _write_dataset(root: Path, config: SynthConfig, progress, workers: int) -> None:
    identities = build_identities(config)
    entries, unseen_entries = _write_images(root, config, identities, progress, workers)
    (root / ANNOTATION_FILE).write_text(json.dumps(entries))
    (root / UNSEEN_ANNOTATION_FILE).write_text(json.dumps(unseen_entries))
    by_id = {str(pid): record for pid, record in identities.items()}
    (root / IDENTITY_FILE).write_text(json.dumps(by_id, indent=1))
    twins = [{"a": record["derived_from"], "b": pid, "kind": record["derivation"]}
             for pid, record in identities.items() if record["derived_from"] is not None]
    (root / TWINS_FILE).write_text(json.dumps(twins, indent=1))


def generate_synthpedes(
    out_dir: str | Path,
    config: SynthConfig = SynthConfig(),
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = 1,
) -> Path:
    """Generate a synthpedes data set at ``out_dir`` and return it as a Path.

    Raises ``FileExistsError`` if ``out_dir`` exists and is not an empty directory.
    ``progress(done, total)`` is called after each image is written.  ``workers`` processes
    render the images (None: one per core; the output does not depend on it).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} already exists and is not empty")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():  # left by an earlier process that had the same pid and was killed
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        _write_dataset(tmp, config, progress, workers or os.cpu_count() or 1)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def contact_sheet(data_dir: str | Path, out_png: str | Path, n: int = 24) -> Path:
    """Save a grid of ``n`` images spread over the data set, each with its first caption's start.

    For humans checking that the drawings look like pedestrians; not used in training.
    """
    data_dir, out_png = Path(data_dir), Path(out_png)
    entries = json.loads((data_dir / ANNOTATION_FILE).read_text())
    chosen = entries[:: max(1, len(entries) // n)][:n]
    cols, cell_w, image_h, text_h = min(8, len(chosen)), 120, 216, 56
    rows = -(-len(chosen) // cols)
    sheet = Image.new("RGB", (cols * cell_w, rows * (image_h + text_h)), (255, 255, 255))
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for i, entry in enumerate(chosen):
        with Image.open(data_dir / IMAGE_DIR / entry["file_path"]) as image:
            scale = min(image_h / image.height, (cell_w - 8) / image.width)
            thumb = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)))
        x, y = (i % cols) * cell_w, (i // cols) * (image_h + text_h)
        sheet.paste(thumb, (x + (cell_w - thumb.width) // 2, y + image_h - thumb.height))
        words = " ".join(entry["captions"][0].split()[:12])
        text = "\n".join(textwrap.wrap(words, 19)[:4])
        draw.multiline_text((x + 3, y + image_h + 2), text, fill=(0, 0, 0), font=font)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png)
    return out_png
