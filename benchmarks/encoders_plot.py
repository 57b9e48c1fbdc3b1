"""Tiny PIL line plots for the encoder benchmarks (no plotting dependency needed)."""
from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


def line_plot(series: dict[str, list[float]], path: str | Path, *, title: str, xlabel: str, ylabel: str,
              log_y: bool = True, size: tuple[int, int] = (640, 420), y_min: float = 1e-4) -> Path:
    """One line per named series (x = 1, 2, ...), log-scaled y by default, legend on the right."""
    w, h = size
    left, right, top, bottom = 60, 170, 30, 45
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    ys = [max(v, y_min) if log_y else v for s in series.values() for v in s]
    n = max(len(s) for s in series.values())
    f = (lambda v: math.log10(max(v, y_min))) if log_y else (lambda v: v)
    lo, hi = min(f(v) for v in ys), max(f(v) for v in ys)
    if log_y:
        lo, hi = math.floor(lo), math.ceil(hi)
    hi = hi if hi > lo else lo + 1

    def px(i: int, v: float) -> tuple[float, float]:
        x = left + (w - left - right) * (i / max(1, n - 1))
        y = top + (h - top - bottom) * (1 - (f(v) - lo) / (hi - lo))
        return x, y

    d.rectangle([left, top, w - right, h - bottom], outline="black")
    ticks = range(int(lo), int(hi) + 1) if log_y else [lo + (hi - lo) * k / 4 for k in range(5)]
    for t in ticks:
        y = top + (h - top - bottom) * (1 - (t - lo) / (hi - lo))
        d.line([left - 4, y, left, y], fill="black")
        d.text((4, y - 6), f"1e{t}" if log_y else f"{t:.2g}", fill="black")
    for k in range(5):
        i = round((n - 1) * k / 4)
        x = px(i, 1.0)[0]
        d.line([x, h - bottom, x, h - bottom + 4], fill="black")
        d.text((x - 6, h - bottom + 6), str(i + 1), fill="black")
    d.text((left, 8), title, fill="black")
    d.text(((w - right + left) // 2 - 30, h - 18), xlabel, fill="black")
    d.text((4, top - 22), ylabel, fill="black")
    for k, (name, s) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        d.line([px(i, v) for i, v in enumerate(s)], fill=colour, width=2)
        y = top + 16 * k
        d.line([w - right + 10, y + 6, w - right + 30, y + 6], fill=colour, width=3)
        d.text((w - right + 36, y), name, fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path
