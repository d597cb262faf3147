"""The report's charts as inline SVG (matplotlib), so the HTML file opens offline.

Text stays text in the SVG (``svg.fonttype: none``): the browser draws it with its own
fonts, so Korean topic names and labels render without embedding a CJK font. Every
label is plain text (no mathtext): a ``$`` in a category name is drawn as a ``$``.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from topicsent._extras import require

COLOURS = {"positive": "#2e7d32", "neutral": "#9e9e9e", "negative": "#c62828", "conflict": "#f9a825"}
TOP_ASPECTS = 15
TOP_DRIVERS = 12
_STYLE = {
    "svg.fonttype": "none",
    "text.parse_math": False,  # labels are users' text: "$$$ vs $" is a category, not TeX
    "font.family": ["DejaVu Sans", "NanumGothic", "Noto Sans CJK KR", "sans-serif"],
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@contextmanager
def _figure(width: float, height: float) -> Iterator[Any]:
    matplotlib = require("matplotlib", needed_by="topicsent report")
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # a missing optional CJK font is fine
    with plt.rc_context(_STYLE):
        figure, axes = plt.subplots(figsize=(width, height))
        try:
            yield figure, axes
        finally:
            plt.close(figure)


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # inline: no XML prolog or doctype


def mention_share_chart(aspects: list[dict[str, Any]]) -> str:
    rows = aspects[:TOP_ASPECTS][::-1]
    with _figure(7, 0.35 * len(rows) + 0.8) as (figure, axes):
        axes.barh([r["aspect"] for r in rows], [100 * r["review_share"] for r in rows], color="#1565c0")
        axes.set_xlabel("% of answered reviews that mention it")
        return _svg(figure)


def sentiment_chart(aspects: list[dict[str, Any]]) -> str:
    rows = aspects[:TOP_ASPECTS][::-1]
    names = [r["aspect"] for r in rows]
    with _figure(7, 0.35 * len(rows) + 1.0) as (figure, axes):
        left = [0.0] * len(rows)
        for polarity in ("positive", "neutral", "conflict", "negative"):
            shares = [100 * r.get(polarity, 0.0) for r in rows]
            if any(shares):
                axes.barh(names, shares, left=left, color=COLOURS[polarity], label=polarity)
                left = [a + b for a, b in zip(left, shares, strict=True)]
        axes.set_xlim(0, 100)
        axes.set_xlabel("% of mentions")
        axes.legend(ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        return _svg(figure)


def rating_chart(series: dict[str, dict[int, int]]) -> str:
    """Grouped bars: the share of reviews at each rating, one bar per named series."""
    scale = sorted({rating for counts in series.values() for rating in counts})
    width = 0.8 / len(series)
    with _figure(7, 3) as (figure, axes):
        for i, (label, counts) in enumerate(series.items()):
            total = sum(counts.values()) or 1
            positions = [x + (i - (len(series) - 1) / 2) * width for x in range(len(scale))]
            axes.bar(positions, [100 * counts.get(s, 0) / total for s in scale], width, label=label)
        axes.set_xticks(range(len(scale)), [str(s) for s in scale])
        axes.set_xlabel("rating")
        axes.set_ylabel("% of reviews")
        axes.legend(frameon=False)
        return _svg(figure)


def drivers_chart(drivers: pd.DataFrame) -> str:
    rows = drivers.head(TOP_DRIVERS).iloc[::-1]
    labels = [f"{r.polarity}: {r.topic}" for r in rows.itertuples()]
    with _figure(7, 0.35 * len(rows) + 1.0) as (figure, axes):
        errors = [rows.effect - rows.ci_low, rows.ci_high - rows.effect]
        colours = [COLOURS["positive"] if e > 0 else COLOURS["negative"] for e in rows.effect]
        axes.errorbar(rows.effect, labels, xerr=errors, fmt="none", ecolor="#757575", capsize=3)
        axes.scatter(rows.effect, labels, color=colours, zorder=3)
        axes.axvline(0, color="#424242", linewidth=0.8)
        axes.set_xlabel("stars, other mentions held equal (95% bootstrap interval)")
        return _svg(figure)


def accuracy_cost_chart(results: list[dict[str, Any]]) -> str:
    """Quality against compute time per 1,000 reviews (log scale), one colour per dataset."""
    with _figure(7, 4) as (figure, axes):
        for dataset in dict.fromkeys(r["dataset"] for r in results):
            rows = [r for r in results if r["dataset"] == dataset and r.get("reviews_per_second")]
            xs = [1000 / r["reviews_per_second"] for r in rows]
            axes.scatter(xs, [r["score"] for r in rows], label=dataset, s=30)
            for x, row in zip(xs, rows, strict=True):
                axes.annotate(_short(row["method"]), (x, row["score"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        axes.set_xscale("log")
        axes.set_xlabel("seconds per 1,000 reviews (prediction, this machine)")
        axes.set_ylabel("primary score")
        axes.legend(title="dataset", fontsize=8, title_fontsize=8)
        axes.margins(x=0.15)
        return _svg(figure)


def _short(method: str) -> str:
    """``llm[model=qwen2.5-coder-1.5b-instruct,strategy=retrieval,...]`` -> ``llm retrieval 1.5b``."""
    name, _, params = method.partition("[")
    values = dict(p.split("=", 1) for p in params.rstrip("]").split(",") if "=" in p)
    model = values.get("model") or values.get("base") or ""
    size = [t for t in model.split("-") if re.fullmatch(r"\d+(\.\d+)?[bm]", t)][:1]
    details = [v for k, v in values.items() if k in ("strategy", "design", "adaptation", "rating_model")]
    return " ".join([name, *details, *size])
