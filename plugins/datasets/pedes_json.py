"""Readers for the JSON annotation files of CUHK-PEDES, ICFG-PEDES and RSTPReid.

The three formats differ only in the file name and in what the image field is called, so
one reader takes a :class:`JsonFormat`.  Problems with the annotation file itself are
one-line :class:`MiaError`s naming the file, the entry and the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mia.core.base.errors import MiaError, read_user_file
from mia.core.data.records import SPLITS, Record, SplitSize

MAX_PERSON_ID = 2**63 - 1  # person ids live in int64 arrays
TWINS_FILE = "twins.json"


@dataclass(frozen=True)
class JsonFormat:
    """Where a format keeps its annotation file, which field names the image, and the split
    sizes its authors published (what a complete download holds)."""

    annotation_file: str
    image_field: str
    image_dir: str = "imgs"
    published: dict[str, SplitSize] | None = None

    def annotation_path(self, path: Path) -> Path:
        return path / self.annotation_file if path.is_dir() else path

    def detect(self, path: Path) -> bool:
        return self.annotation_path(path).name == self.annotation_file and self.annotation_path(path).is_file()

    def twins(self, path: Path) -> list[tuple[int, int]]:
        """Look-alike pairs of people from ``twins.json`` beside the annotation file (optional):
        a list of ``{"a": id, "b": id}`` (synthpedes writes one; any data set may)."""
        twins_path = self.annotation_path(path).parent / TWINS_FILE
        if not twins_path.is_file():
            return []
        pairs = []
        for i, entry in enumerate(_load_json_list(twins_path)):
            where = f"{twins_path}: entry {i}"
            if not isinstance(entry, dict) or "a" not in entry or "b" not in entry:
                raise MiaError(f"{where}: expected an object with fields 'a' and 'b' (person ids)")
            pairs.append((_person_id(entry["a"], where, "a"), _person_id(entry["b"], where, "b")))
        return pairs

    def read(self, path: Path) -> list[Record]:
        annotation = self.annotation_path(path)
        entries = _load_json_list(annotation)
        image_root = annotation.parent / self.image_dir
        return [self._record(entry, i, annotation, image_root) for i, entry in enumerate(entries)]

    def _record(self, entry, index: int, annotation: Path, image_root: Path) -> Record:
        where = f"{annotation}: entry {index}"
        if not isinstance(entry, dict):
            raise MiaError(f"{where}: expected an object, got {type(entry).__name__}")
        for name in ("split", "captions", self.image_field, "id"):
            if name not in entry:
                raise MiaError(f"{where}: missing field '{name}'")
        split = entry["split"]
        if split not in SPLITS:
            raise MiaError(f"{where}: field 'split' must be one of {', '.join(SPLITS)}, got {split!r}")
        captions = entry["captions"]
        if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
            raise MiaError(f"{where}: field 'captions' must be a list of strings")
        image = _relative_image_path(entry[self.image_field], f"{where}: field '{self.image_field}'", self.image_dir)
        return Record(image_root / image, tuple(captions), _person_id(entry["id"], where), split)


def _relative_image_path(value, where: str, image_dir: str) -> PurePosixPath:
    """A path inside the image folder: annotations that point elsewhere (``..``, absolute
    paths) are refused, so a data set can never make mia read files outside it."""
    if not isinstance(value, str) or not value.strip():
        raise MiaError(f"{where} must be a non-empty string")
    if "\0" in value or not _encodable(value):
        raise MiaError(f"{where} must be a file name without NUL bytes or invalid Unicode, got {value!r}")
    path = PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", value):
        raise MiaError(f"{where} must be a path inside {image_dir}/ (no '..', not absolute), got {value!r}")
    return path


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:  # lone surrogates, e.g. from "\ud800" in the JSON
        return False


def _person_id(value, where: str, field: str = "id") -> int:
    """A non-negative integer (or its decimal string) that fits in 64 bits."""
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,19}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PERSON_ID:
        raise MiaError(f"{where}: field '{field}' must be an integer from 0 to {MAX_PERSON_ID}, got {value!r}"[:300])
    return value


def _load_json_list(path: Path) -> list:
    text = read_user_file(path, "annotation file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MiaError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # 5,000-digit numbers, lists nested 100,000 deep
        raise MiaError(f"{path}: not a usable JSON file ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not isinstance(data, list):
        raise MiaError(f"{path}: expected a JSON list of entries, got {type(data).__name__}")
    return data


#: Li et al., CVPR 2017, as every later paper quotes them (68,126 train captions: 9 images
#: have more than two; 80,440 captions in all).
CUHK_PEDES = JsonFormat("reid_raw.json", "file_path", published={
    "train": SplitSize(11_003, 34_054, 68_126), "val": SplitSize(1_000, 3_078, 6_158),
    "test": SplitSize(1_000, 3_074, 6_156)})
#: Ding et al., SSAN (2021): one caption per image, no val split.
ICFG_PEDES = JsonFormat("ICFG-PEDES.json", "file_path", published={
    "train": SplitSize(3_102, 34_674, 34_674), "test": SplitSize(1_000, 19_848, 19_848)})
#: Zhu et al., DSSL (ACM MM 2021): 5 images per person, 2 captions per image.
RSTPREID = JsonFormat("data_captions.json", "img_path", published={
    "train": SplitSize(3_701, 18_505, 37_010), "val": SplitSize(200, 1_000, 2_000),
    "test": SplitSize(200, 1_000, 2_000)})
