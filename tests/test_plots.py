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


def test_many_arms_keep_their_own_colours_and_a_legend_inside_the_picture(tmp_path):
    from mia.core.experiments.plots import PALETTE

    names = [f"a-rather-long-arm-name-{i}" for i in range(12)]
    grouped_bar_chart(tmp_path / "bars.png", "grid", ["R1", "mAP", "twin"],
                      {name: [(20, 18, 22)] * 3 for name in names})
    picture = np.asarray(Image.open(tmp_path / "bars.png").convert("RGB"))
    legend = picture[-24 * 3 - 30:]  # the legend's rows, under the groups' labels
    inked = np.flatnonzero((legend.min(axis=2) < 200).any(axis=0))
    assert inked.size and inked.max() < picture.shape[1] - 8  # no entry runs off the right edge
    assert len(set(PALETTE[:len(names)])) == len(names)
    swatches = {tuple(pixel) for pixel in legend.reshape(-1, 3)}
    assert all(colour in swatches for colour in PALETTE[:len(names)])  # every arm's swatch is drawn
