"""Charts people look at: a long title must stay inside the picture."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mia.core.experiments.plots import grouped_bar_chart


def test_a_long_title_shrinks_to_fit(tmp_path):
    title = "Alignment ablation on synthpedes (test, mean over seeds, 95% intervals over people and seeds)"
    grouped_bar_chart(tmp_path / "bars.png", title, ["R1", "mAP"], {"global": [(20, 18, 22), (15, 14, 16)]})
    band = np.asarray(Image.open(tmp_path / "bars.png").convert("L"))[:45]
    inked = np.flatnonzero((band < 200).any(axis=0))
    assert inked.size and inked.max() < band.shape[1] - 8  # the title ends before the right edge
