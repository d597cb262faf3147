"""``topicsent report``: runs and evaluations as one self-contained HTML file.

Everything is inline (styles, SVG charts), nothing loads from the network, so the file
can be mailed or archived and still opens. Text is escaped by the template engine;
evidence quotes are highlighted at the character span the method reported.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from topicsent._extras import require
from topicsent.errors import InputDataError, InvalidParameterError
from topicsent.report import _charts as charts
from topicsent.report._data import RunData, RunSection, read_eval, run_section
from topicsent.runs import MANIFEST

MAX_EXAMPLE_CHARS = 600


def build_report(sources: list[Path], out: Path) -> Path:
    """Write one HTML report over run folders and ``topicsent eval`` JSON files."""
    if not sources:
        raise InvalidParameterError("give at least one run folder or evaluation JSON file")
    runs, evals = [], []
    for source in sources:
        if (Path(source) / MANIFEST).is_file():
            runs.append(_run_view(run_section(RunData.from_run(Path(source)))))
        elif Path(source).is_file() and Path(source).suffix == ".json":
            evals.append(_eval_view(read_eval(Path(source))))
        else:
            raise InputDataError(f"{source}: neither a run folder (from `topicsent analyze`) nor an eval .json file")
    html = _template().render(
        runs=runs,
        evals=evals,
        language="ko" if any(r["section"].language == "ko" for r in runs) else "en",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def _run_view(section: RunSection) -> dict[str, Any]:
    view: dict[str, Any] = {"section": section, "charts": {}, "examples": [_example(e) for e in section.examples]}
    if section.aspects:
        view["charts"]["Mention share by aspect"] = charts.mention_share_chart(section.aspects)
        view["charts"]["Sentiment by aspect"] = charts.sentiment_chart(section.aspects)
    if section.ratings and section.ratings["distribution"]:
        title = "Rating distribution: predicted vs the reviewers' own" if section.input_ratings else "Predicted ratings"
        own = {"reviewers' own": section.input_ratings} if section.input_ratings else {}
        view["charts"][title] = charts.rating_chart({"predicted": section.ratings["distribution"]} | own)
    elif section.input_ratings:
        view["charts"]["The reviewers' own ratings"] = charts.rating_chart({"reviewers' own": section.input_ratings})
    if section.drivers is not None and len(section.drivers):
        view["charts"]["Key drivers of the rating"] = charts.drivers_chart(section.drivers)
    return view


def _eval_view(run: dict[str, Any]) -> dict[str, Any]:
    results = run["results"]
    return {
        "run": run["run"],
        "results": results,
        "datasets": list(dict.fromkeys(r["dataset"] for r in results)),
        "chart": charts.accuracy_cost_chart(results) if results else None,
    }


def _example(example: dict[str, Any]) -> dict[str, Any]:
    """The review text cut to a readable window around its highlighted spans, as
    ``pieces``: plain text, the aspect's span (marked with its polarity) and its
    opinion's span (marked ``opinion``). A span outside the text is not highlighted."""
    text = example["text"]
    marks = [
        (span[0], span[1], mark)
        for span, mark in ((example["span"], example["polarity"]), (example.get("opinion"), "opinion"))
        if span is not None and 0 <= span[0] < span[1] <= len(text)
    ]
    kept: list[tuple[int, int, str]] = []
    for mark in sorted(marks):  # an opinion inside its aspect (rare) is not marked twice
        if not kept or mark[0] >= kept[-1][1]:
            kept.append(mark)
    marks = kept
    if not marks:
        return example | {"pieces": [{"text": _cut(text, MAX_EXAMPLE_CHARS), "mark": None}]}
    start, end = marks[0][0], marks[-1][1]
    margin = max((MAX_EXAMPLE_CHARS - (end - start)) // 2, 0)
    pieces = [{"text": ("…" if start > margin else "") + text[max(start - margin, 0) : start], "mark": None}]
    for (mark_start, mark_end, mark), following in zip(marks, [m[0] for m in marks[1:]] + [None], strict=True):
        pieces.append({"text": text[mark_start:mark_end], "mark": mark})
        if following is not None:
            pieces.append({"text": text[mark_end:following], "mark": None})
    pieces.append({"text": text[end : end + margin] + ("…" if end + margin < len(text) else ""), "mark": None})
    return example | {"pieces": pieces}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _template():
    jinja2 = require("jinja2", "report", needed_by="topicsent report")  # jinja2 comes with [llm] too; [report] is this one's
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("topicsent.report", "templates"), autoescape=jinja2.select_autoescape(["html", "j2"])
    )
    environment.filters["pct"] = lambda value: "-" if value is None else f"{100 * value:.0f}%"
    environment.filters["num"] = _number
    return environment.get_template("report.html.j2")


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)
