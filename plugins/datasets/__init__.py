"""Built-in data sets: the three public benchmarks and the generated ``synthpedes`` (and its
open-vocabulary variant ``synthpedes-unseen``)."""

from __future__ import annotations

from pathlib import Path

from mia.core.base.errors import MiaError
from mia.core.registry.hookspecs import hookimpl
from mia.plugins.datasets.pedes_json import CUHK_PEDES, ICFG_PEDES, RSTPREID, JsonFormat

SYNTHPEDES = "mia.plugins.datasets.synthpedes_source"  # by reference: its generator imports numpy and Pillow


def _reader(fmt: JsonFormat, dataset: str):
    def read(path: Path | None):
        if path is None:
            raise MiaError(f"--data {dataset} needs a path: --data {dataset}:/path/to/{fmt.annotation_file}")
        return fmt.read(path)

    read.detect = fmt.detect
    read.twins = fmt.twins
    read.published = fmt.published
    return read


@hookimpl
def register_datasets(register):
    register("cuhk-pedes", _reader(CUHK_PEDES, "cuhk-pedes"), aliases=("cuhk",),
             description="CUHK-PEDES: reid_raw.json + imgs/ (train/val/test)")
    register("icfg-pedes", _reader(ICFG_PEDES, "icfg-pedes"), aliases=("icfg",),
             description="ICFG-PEDES: ICFG-PEDES.json + imgs/ (train/test)")
    register("rstpreid", _reader(RSTPREID, "rstpreid"), aliases=("rstp",),
             description="RSTPReid: data_captions.json + imgs/ (train/val/test)")
    register("synthpedes", f"{SYNTHPEDES}:synthpedes_records",
             description="built-in procedurally drawn pedestrians in CUHK-PEDES format (generated and cached)")
    register("synthpedes-unseen", f"{SYNTHPEDES}:synthpedes_unseen_records",
             description="synthpedes with its test captions written only in held-out words (open-vocabulary test)")
