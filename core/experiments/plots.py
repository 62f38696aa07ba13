"""Grouped bar charts drawn with Pillow (no plotting library needed for one picture)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from mia.core.base import atomic

#: twenty distinguishable colours (dark, then light shades), so a grid of many arms repeats none
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
           (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
           (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229)]
#: the narrowest bar, in pixels: a picture of many arms grows wider instead of squeezing them
MIN_BAR = 22


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()


def _legend_rows(names: list[str], font, room: float) -> list[list[str]]:
    """The legend's entries in rows that each fit ``room`` pixels (a swatch, the name, a gap)."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rows, used = [[]], 0.0
    for name in names:
        needed = 30 + measure.textlength(name, font=font)
        if rows[-1] and used + needed > room:
            rows.append([])
            used = 0.0
        rows[-1].append(name)
        used += needed
    return rows


def grouped_bar_chart(path: str | Path, title: str, groups: list[str],
                      series: dict[str, list[tuple[float, float, float]]], y_label: str = "%",
                      y_max: float = 100.0) -> None:
    """Bars of ``series[name][g] = (value, low, high)`` for each group ``g``, with whiskers
    from low to high (an interval)."""
    names = list(series)
    font = _font(13)
    width = max(640, len(groups) * max(140, round(MIN_BAR * len(names) / 0.8)) + 90)
    left, right, top = 70, 20, 50
    legend_rows = _legend_rows(names, font, width - left - right)
    bottom = 70 + 24 * len(legend_rows)
    height = 370 + bottom
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    title_size = 18
    while title_size > 10 and draw.textlength(title, font=_font(title_size)) > width - 24:
        title_size -= 1  # a long title shrinks to fit rather than run off the picture
    draw.text((12, 14), title, fill="black", font=_font(title_size))
    plot_w, plot_h = width - left - right, height - top - bottom

    def y(value: float) -> float:
        return top + plot_h * (1 - max(0.0, min(value, y_max)) / y_max)

    for tick in range(0, int(y_max) + 1, max(1, int(y_max) // 5)):
        draw.line([(left, y(tick)), (width - right, y(tick))], fill=(225, 225, 225))
        draw.text((left - 8, y(tick)), f"{tick}", fill="black", font=font, anchor="rm")
    draw.text((12, top + plot_h / 2), y_label, fill="black", font=font, anchor="lm")
    draw.line([(left, top), (left, top + plot_h), (width - right, top + plot_h)], fill="black")

    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.8 / max(len(names), 1)
    for g, group in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        for s, name in enumerate(names):
            mean, low, high = series[name][g]
            bx = x0 + s * bar_w
            draw.rectangle([bx, y(mean), bx + bar_w - 2, top + plot_h], fill=PALETTE[s % len(PALETTE)])
            cx = bx + (bar_w - 2) / 2
            if high > low:
                draw.line([(cx, y(high)), (cx, y(low))], fill="black", width=1)
                draw.line([(cx - 3, y(high)), (cx + 3, y(high))], fill="black")
                draw.line([(cx - 3, y(low)), (cx + 3, y(low))], fill="black")
            draw.text((cx, y(max(high, mean)) - 3), f"{mean:.1f}", fill="black", font=_font(10), anchor="mb")
        draw.text((left + g * group_w + group_w / 2, top + plot_h + 8), group, fill="black", font=font, anchor="mt")

    s = 0
    for row, row_names in enumerate(legend_rows):
        legend_y, x = top + plot_h + 40 + 24 * row, left
        for name in row_names:
            draw.rectangle([x, legend_y, x + 14, legend_y + 14], fill=PALETTE[s % len(PALETTE)])
            draw.text((x + 20, legend_y + 7), name, fill="black", font=font, anchor="lm")
            x += 30 + draw.textlength(name, font=font)
            s += 1
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic.write_bytes(path, buffer.getvalue())
