"""``--data synthpedes`` and ``--data synthpedes-unseen``: generate the default synthetic
set once, cache it, read it.

The cache key covers the generator settings and ``SYNTHPEDES_FORMAT`` (bump it whenever
the drawing or captions change), so a stale set is never reused after an upgrade.  Both
data sets read the same directory, through different annotation files, so the
open-vocabulary test shares its images with the normal one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

from mia.core.base.paths import cache_dir
from mia.core.base.progress import Progress
from mia.core.data.records import Record
from mia.plugins.datasets.pedes_json import CUHK_PEDES, JsonFormat
from mia.plugins.datasets.synthpedes import DEFAULT_SET, UNSEEN_ANNOTATION_FILE, SynthConfig, generate_synthpedes

SYNTHPEDES_FORMAT = 2
#: the same entries as reid_raw.json, with the test captions in held-out words
SYNTHPEDES_UNSEEN = JsonFormat(UNSEEN_ANNOTATION_FILE, "file_path")


def default_synthpedes_dir(config: SynthConfig = DEFAULT_SET) -> Path:
    settings = json.dumps({"format": SYNTHPEDES_FORMAT, **dataclasses.asdict(config)}, sort_keys=True)
    key = hashlib.sha1(settings.encode()).hexdigest()[:12]
    return cache_dir() / "synthpedes" / key


def ensure_synthpedes(config: SynthConfig = DEFAULT_SET) -> Path:
    """The default synthetic set's directory, generating it on first use."""
    directory = default_synthpedes_dir(config)
    if not (directory / CUHK_PEDES.annotation_file).is_file():
        total = config.ids * config.images_per_id
        print(f"generating synthpedes ({config.ids} identities) into {directory}", file=sys.stderr)
        with Progress(total, "synthpedes", unit="img") as bar:
            generate_synthpedes(directory, config, progress=lambda done, _total: bar.update(done - bar.done),
                                workers=None)
    return directory


def _read(fmt: JsonFormat, path: Path | None) -> list[Record]:
    return fmt.read(ensure_synthpedes() if path is None else path)


def synthpedes_records(path: Path | None) -> list[Record]:
    """Records of a generated set: the cached default, or one made by ``mia data synth``."""
    return _read(CUHK_PEDES, path)


def synthpedes_unseen_records(path: Path | None) -> list[Record]:
    """Like :func:`synthpedes_records`, with the test captions in held-out words.

    It has no ``detect``: a generated directory given as a plain path must keep loading
    as CUHK-PEDES through ``reid_raw.json``.
    """
    return _read(SYNTHPEDES_UNSEEN, path)


def synthpedes_twins(path: Path | None) -> list[tuple[int, int]]:
    """The hard-negative pairs (``twins.json``) of the cached default set or of ``path``."""
    return CUHK_PEDES.twins(ensure_synthpedes() if path is None else path)


synthpedes_records.twins = synthpedes_unseen_records.twins = synthpedes_twins
