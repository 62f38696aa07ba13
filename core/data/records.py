"""Data set records and the checks every data set goes through, whatever its format.

A dataset plugin only parses its annotation file into :class:`Record` objects; this
module cleans them (empty captions), checks the images (missing, undecodable) and turns
each problem into a counted, reported skip or a one-line :class:`MiaError`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from mia.core.base.errors import MiaError
from mia.core.data.image_check import check_images
from mia.core.registry.plugins import get_registry

SPLITS = ("train", "val", "test")
_SHOWN = 3  # how many offending items a report names


@dataclass(frozen=True)
class Record:
    """One image of one person with its captions."""

    image: Path
    captions: tuple[str, ...]
    person_id: int
    split: str


@dataclass(frozen=True)
class SplitSize:
    """How big one split is: what a data set's paper publishes and what a download holds."""

    identities: int
    images: int
    captions: int

    @classmethod
    def of(cls, records: list[Record]) -> "SplitSize":
        return cls(len({r.person_id for r in records}), len(records), sum(len(r.captions) for r in records))

    def describe(self) -> str:
        return ", ".join(f"{count:,} {noun if count == 1 else plural}" for count, noun, plural in (
            (self.identities, "identity", "identities"), (self.images, "image", "images"),
            (self.captions, "caption", "captions")))


@dataclass
class DataSet:
    """Checked records of one data set, with the notes on what was skipped and why, the
    look-alike pairs of people it declares (``twins``), if any, and the split sizes its
    authors published (``published``), for the named benchmarks."""

    name: str
    source: str
    records: list[Record]
    notes: list[str] = field(default_factory=list)
    twins: list[tuple[int, int]] = field(default_factory=list)
    published: dict[str, SplitSize] = field(default_factory=dict)

    def sizes(self) -> dict[str, SplitSize]:
        return {name: SplitSize.of(self.split(name)) for name in SPLITS if self.has_split(name)}

    def size_differences(self) -> list[str]:
        """One line per split whose size differs from the published one: an incomplete
        download, a different release, or images that could not be read."""
        sizes = self.sizes()
        lines = []
        for name, published in self.published.items():
            held = sizes.get(name, SplitSize(0, 0, 0))
            if held != published:
                lines.append(f"{self.name} {name} holds {held.describe()}; published: {published.describe()}")
        return lines

    def carve_val(self, share: float, seed: int) -> str:
        """Give ``share`` of train's people (at least one, drawn by ``seed``) a new val split,
        so that a data set without one never picks its epoch on test; returns what was done.
        The same people are never in both, and the draw depends only on the seed and the
        training identities."""
        people = sorted({r.person_id for r in self.split("train")})
        count = max(1, round(share * len(people)))
        if count >= len(people):
            raise MiaError(f"data set '{self.source}' has no val split and too few training people ({len(people)}) "
                           f"to carve one at --val-share {share}: give it a val split, or pass --select-on-test")
        chosen = set(random.Random(seed).sample(people, count))
        self.records = [Record(r.image, r.captions, r.person_id, "val") if r.split == "train" and r.person_id in chosen
                        else r for r in self.records]
        val = SplitSize.of(self.split("val"))
        return (f"no val split: carved one from train by identity ({val.identities:,} of {len(people):,} people, "
                f"{val.images:,} images, share {share:g}, seed {seed}); train keeps the rest")

    def split(self, name: str) -> list[Record]:
        records = [r for r in self.records if r.split == name]
        if not records:
            present = sorted({r.split for r in self.records})
            raise MiaError(f"data set '{self.source}' has no '{name}' split; it has: {', '.join(present)}")
        return records

    def has_split(self, name: str) -> bool:
        return any(r.split == name for r in self.records)

    def eval_split(self) -> str:
        """The split to select models on: val when there is one (CUHK-PEDES), else test."""
        return "val" if self.has_split("val") else "test"


def training_dataset(spec: str, val_share: float, seed: int, select_on_test: bool) -> DataSet:
    """The data set as a run sees it: one without a val split gets one carved from its
    training people (the epoch is never picked on test), unless ``select_on_test`` asks for
    test, which is then said in a note.  Training and every later evaluation of the run's
    checkpoints call this, so they see the same people in the same splits."""
    dataset = load_dataset(spec)
    if not dataset.has_split("val"):
        if select_on_test:
            dataset.notes.append("no val split: the epoch is selected on test (--select-on-test); every test "
                                 "number of this run is selected on test")
        else:
            dataset.notes.append(dataset.carve_val(val_share, seed))
    return dataset


def named_dataset(spec: str) -> str | None:
    """The registered data set ``spec`` names (``NAME`` or ``NAME:PATH``), or None for a bare
    path: a folder in CUHK-PEDES's format (``mia data synth`` writes one) is not CUHK-PEDES,
    so only a named benchmark is held to its published sizes and gets its recipe."""
    name = spec.partition(":")[0]
    return name if name in get_registry("dataset").names() else None


def parse_data_spec(spec: str):
    """``NAME``, ``NAME:PATH`` or ``PATH`` -> (component, path or None)."""
    registry = get_registry("dataset")
    name, sep, rest = spec.partition(":")
    if sep and name in registry.names():
        return registry.get(name), Path(rest).expanduser()
    if spec in registry.names():
        return registry.get(spec), None
    path = Path(spec).expanduser()
    if not path.exists():
        raise MiaError(
            f"--data '{spec}' is neither a data set name ({', '.join(registry.names())}) "
            "nor an existing path"
        )
    for component in registry:
        detect = getattr(component.factory, "detect", None)
        if detect is not None and detect(path):
            return component, path
    raise MiaError(
        f"--data '{spec}': no data set recognises this path; name one as NAME:PATH "
        f"({', '.join(registry.names())})"
    )


def load_dataset(spec: str, check_images_on_disk: bool = True) -> DataSet:
    """Load, clean and check the data set that ``--data SPEC`` names."""
    component, path = parse_data_spec(spec)
    records = component.factory(path)
    dataset = DataSet(component.name, spec, [])
    dataset.records = _drop_repeated_images(records, dataset.notes)
    dataset.records = _drop_empty_captions(dataset.records, dataset.notes)
    if check_images_on_disk:
        dataset.records = _drop_bad_images(dataset.records, dataset.notes)
    if not dataset.records:
        raise MiaError(f"data set '{spec}' has no usable records ({'; '.join(dataset.notes) or 'empty'})")
    twins_of = getattr(component.factory, "twins", None)
    if twins_of is not None:
        dataset.twins = _checked_twins(twins_of(path), dataset, spec)
    if named_dataset(spec) is not None:
        dataset.published = getattr(component.factory, "published", None) or {}
        dataset.notes += dataset.size_differences()
    return dataset


def _checked_twins(pairs: list[tuple[int, int]], dataset: DataSet, spec: str) -> list[tuple[int, int]]:
    """Twin pairs must name people of the data set (a typo would silently drop a pair)."""
    people = {r.person_id for r in dataset.records}
    for a, b in pairs:
        for person in (a, b):
            if person not in people:
                raise MiaError(f"data set '{spec}': twin pair ({a}, {b}) names person {person}, "
                               "who has no usable image in the data set")
    return list(pairs)


def _drop_repeated_images(records: list[Record], notes: list[str]) -> list[Record]:
    """An image listed twice counts once (its first entry): a repeated file would be a
    gallery item that is always its own twin, and in training a doubled sample."""
    kept, seen, repeated = [], set(), []
    for record in records:
        if record.image in seen:
            repeated.append(record.image.name)
        else:
            seen.add(record.image)
            kept.append(record)
    if repeated:
        notes.append(f"skipped {len(repeated)} repeated entr{'y' if len(repeated) == 1 else 'ies'} "
                     f"for images listed earlier ({_first(repeated)})")
    return kept


def _readable_text(caption: str) -> bool:
    """Valid Unicode: a lone surrogate (``"\\ud800"`` in JSON) cannot be printed or saved."""
    try:
        caption.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _drop_empty_captions(records: list[Record], notes: list[str]) -> list[Record]:
    kept, empty_captions, invalid, captionless = [], 0, [], []
    for record in records:
        readable = [c for c in record.captions if _readable_text(c)]
        invalid += [record.image.name] * (len(record.captions) - len(readable))
        captions = tuple(c.strip() for c in readable if c and c.strip())
        empty_captions += len(readable) - len(captions)
        if captions:
            kept.append(Record(record.image, captions, record.person_id, record.split))
        else:
            captionless.append(record.image.name)
    if invalid:
        notes.append(f"skipped {len(invalid)} caption(s) with invalid Unicode ({_first(invalid)})")
    if empty_captions:
        notes.append(f"skipped {empty_captions} empty caption(s)")
    if captionless:
        notes.append(f"skipped {len(captionless)} image(s) without captions ({_first(captionless)})")
    return kept


def _drop_bad_images(records: list[Record], notes: list[str]) -> list[Record]:
    status = check_images(sorted({r.image for r in records}))
    missing = [str(p) for p, s in status.items() if s == "missing"]
    corrupt = [str(p) for p, s in status.items() if s == "corrupt"]
    if missing:
        notes.append(f"skipped {len(missing)} missing image file(s) ({_first(missing)})")
    if corrupt:
        notes.append(f"skipped {len(corrupt)} unreadable image file(s) ({_first(corrupt)})")
    return [r for r in records if status[r.image] == "ok"]


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (", ..." if len(items) > _SHOWN else "")
