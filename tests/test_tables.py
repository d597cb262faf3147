"""Result tables never cut a value: in a narrow terminal, in a file, as markdown, TSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from rich.console import Console

from topicsent.interfaces import _tables
from topicsent.interfaces._tables import Col, ResultTable, TableFormat, percent, printer

METRICS = ["polarity_accuracy", "polarity_macro_f1", "detection_f1", "joint_f1", "ece", "ece_calibrated"]


def wide_table() -> ResultTable:
    """Long headers, long method specs and numbers: rich cut these to 'pol…' and '0.6…' at 80 columns."""
    columns = [Col("method", wrap=True), *(Col(m, priority=2 if m.startswith("ece") else 0) for m in METRICS)]
    columns += [Col("reviews/s", key="speed", priority=1), Col("share", show=percent, priority=3)]
    rows = [
        {"method": "embed-head[encoder=multilingual-e5-small,design=pair]", **dict.fromkeys(METRICS, 0.612345), "speed": 12345.6,
         "share": 0.25},
        {"method": "tfidf-lr", **{m: 0.1 + i / 10 for i, m in enumerate(METRICS)}, "speed": 3.5, "share": 1.0},
    ]  # fmt: skip
    return ResultTable("mams-acsa (test: 200 reviews)", columns, rows)


def printed(monkeypatch, format: TableFormat, *, terminal: bool, width: int = 80) -> str:
    buffer = io.StringIO()
    fake = Console(file=buffer, force_terminal=terminal, width=width, color_system=None)
    monkeypatch.setattr(_tables, "console", fake)
    with printer(format) as out:
        out.table(wide_table())
    return buffer.getvalue()


def shown_values(table: ResultTable, columns: list[str] | None = None) -> list[str]:
    return [c.show(row[c.field]) for row in table.rows for c in table.columns if columns is None or c.name in columns]


def test_narrow_terminal_drops_low_priority_columns_and_never_cuts(monkeypatch):
    text = printed(monkeypatch, TableFormat.table, terminal=True, width=80)
    assert "…" not in text
    table_lines = [line for line in text.splitlines() if line[:1] in "┏┃┡│└"]
    assert table_lines and max(len(line) for line in table_lines) <= 80
    for value in shown_values(wide_table(), ["polarity_accuracy", "polarity_macro_f1", "detection_f1", "joint_f1"]):
        assert re.search(rf"(?<![\d.]){re.escape(value)}(?![\d])", text), value
    # the method spec wraps across lines of its column but every character is there
    first_column = "".join(line.split("│")[1].strip() for line in table_lines if line.startswith("│"))
    assert first_column == "embed-head[encoder=multilingual-e5-small,design=pair]tfidf-lr"
    assert "Not shown at this width: " in text and "share" in text.split("Not shown at this width: ")[1]


def test_wide_terminal_shows_every_column(monkeypatch):
    text = printed(monkeypatch, TableFormat.table, terminal=True, width=250)
    assert "…" not in text and "Not shown" not in text
    assert all(value in text for value in shown_values(wide_table()))
    assert all(name in text for name in METRICS)  # headers unbroken when there is room


def test_not_a_terminal_prints_the_whole_table_whatever_the_width(monkeypatch):
    text = printed(monkeypatch, TableFormat.table, terminal=False, width=40)
    assert "…" not in text and "Not shown" not in text
    assert all(value in text for value in shown_values(wide_table()))
    assert "embed-head[encoder=multilingual-e5-small,design=pair]" in text and all(name in text for name in METRICS)


def test_markdown_tsv_and_json_keep_every_value(monkeypatch):
    table = wide_table()
    markdown = printed(monkeypatch, TableFormat.markdown, terminal=False)
    header = "| " + " | ".join(c.name for c in table.columns) + " |"
    assert header in markdown and "| embed-head[encoder=multilingual-e5-small,design=pair] | 0.612 |" in markdown

    rows = [r for r in csv.reader(io.StringIO(printed(monkeypatch, TableFormat.tsv, terminal=False)), delimiter="\t")
            if r and not r[0].startswith("#")]  # fmt: skip
    assert rows[0] == [c.field for c in table.columns]
    assert rows[1:] == [[c.show(row[c.field]) for c in table.columns] for row in table.rows]

    document = json.loads(printed(monkeypatch, TableFormat.json, terminal=True))
    assert document["tables"][0]["rows"] == table.rows  # raw values, not the rounded ones


def test_lines_go_to_stderr_when_stdout_is_data(monkeypatch, capsys):
    monkeypatch.setattr(_tables, "console", Console(file=io.StringIO()))
    stderr = io.StringIO()
    monkeypatch.setattr(_tables, "errors", Console(file=stderr))
    with printer(TableFormat.json) as out:
        out.line("Results: somewhere")
        out.table(wide_table())
    assert "Results: somewhere" in stderr.getvalue()
    assert "Results" not in _tables.console.file.getvalue()


@pytest.mark.parametrize(("name", "width", "expected"), [
    ("polarity_macro_f1", 9, "polarity_\nmacro_f1"), ("speed vs tfidf-lr", 7, "speed\nvs\ntfidf-\nlr"), ("ece", 3, "ece"),
])  # fmt: skip
def test_headers_break_after_underscores_and_hyphens(name, width, expected):
    assert _tables._header_lines(name, width) == expected
