"""Readers for the JSON annotation files of CUHK-PEDES, ICFG-PEDES and RSTPReid.

The three formats differ only in the file name and in what the image field is called, so
one reader takes a :class:`JsonFormat`.  Problems with the annotation file itself are
one-line :class:`MiaError`s naming the file, the entry and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mia.core.errors import MiaError
from mia.core.records import SPLITS, Record


@dataclass(frozen=True)
class JsonFormat:
    """Where a format keeps its annotation file and which field names the image."""

    annotation_file: str
    image_field: str
    image_dir: str = "imgs"

    def annotation_path(self, path: Path) -> Path:
        return path / self.annotation_file if path.is_dir() else path

    def detect(self, path: Path) -> bool:
        return self.annotation_path(path).name == self.annotation_file and self.annotation_path(path).is_file()

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
        image = entry[self.image_field]
        if not isinstance(image, str) or not image:
            raise MiaError(f"{where}: field '{self.image_field}' must be a non-empty string")
        return Record(image_root / image, tuple(captions), _person_id(entry["id"], where), split)


def _person_id(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise MiaError(f"{where}: field 'id' must be an integer, got {value!r}")
    if isinstance(value, str):
        if not value.strip().lstrip("-").isdigit():
            raise MiaError(f"{where}: field 'id' must be an integer, got {value!r}")
        value = int(value)
    return value


def _load_json_list(path: Path) -> list:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MiaError(f"{path}: annotation file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MiaError(f"{path}: cannot read annotation file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MiaError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, list):
        raise MiaError(f"{path}: expected a JSON list of entries, got {type(data).__name__}")
    return data


CUHK_PEDES = JsonFormat("reid_raw.json", "file_path")
ICFG_PEDES = JsonFormat("ICFG-PEDES.json", "file_path")
RSTPREID = JsonFormat("data_captions.json", "img_path")
