"""``--tensorboard``: each epoch's losses, learning rate, speed and validation metrics as
TensorBoard scalars in ``RUN/tensorboard`` (the way the field watches training curves;
``metrics.jsonl`` holds the same numbers for scripts)."""

from __future__ import annotations

from pathlib import Path

from mia.core.base.errors import MiaError

FOLDER = "tensorboard"
#: record keys that are not curves
NOT_SCALARS = ("epoch", "alignments", "split")


def require_tensorboard() -> None:
    """One line, before training starts, when the optional package is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise MiaError("--tensorboard needs the tensorboard package: pip install 'mia-reid[tensorboard]'") from None


class EpochBoard:
    """Writes one point per epoch for every number of the epoch's ``metrics.jsonl`` record,
    grouped as ``train/...`` (losses, lr, timing) and ``SPLIT/...`` (the evaluation)."""

    def __init__(self, run_dir: str | Path):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(Path(run_dir) / FOLDER))

    def write(self, record: dict) -> None:
        from mia.core.evaluation.metrics import METRIC_NAMES

        split = record.get("split", "val")
        for key, value in record.items():
            if key in NOT_SCALARS or not isinstance(value, (int, float)):
                continue
            group = split if key in METRIC_NAMES or key.endswith("_se") else "train"
            self.writer.add_scalar(f"{group}/{key}", value, record["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
