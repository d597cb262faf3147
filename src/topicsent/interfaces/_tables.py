"""One way to print result tables, whatever the command and wherever stdout goes.

Rich shrinks every column of a table wider than the console and cuts the cells with
"…", so a results table written to a log file or an 80-column terminal showed
``0.6…`` instead of numbers. Here a cell is never cut:

- ``table`` on a terminal: rich at the terminal's width; text cells wrap, column
  headers wrap at ``_``, numbers stay whole; when even that does not fit, the
  columns of least priority are left out and a note under the table names them;
- ``table`` anywhere else (a file, a pipe, CI): rich as wide as the content;
- ``markdown`` and ``tsv``: plain tables; ``json``: the raw values, one document.

With ``tsv`` and ``json`` stdout holds the tables only (a program reads it); the
sentences a command prints beside them go to stderr.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from topicsent.interfaces._options import console, errors, fmt

#: Narrowest a wrapping (text) column is made before columns are left out.
TEXT_MIN_WIDTH = 12
_BORDER = 3  # rich's default box: one rule and a space of padding either side per column


class TableFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    tsv = "tsv"
    json = "json"


FormatOption = Annotated[
    TableFormat,
    typer.Option(
        "--format",
        help="table: fitted to the terminal (as wide as the content when not a terminal; nothing is cut); "
        "markdown; tsv; json (raw values; other messages go to stderr).",
    ),
]


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Col:
    """A column: its header, the row key it shows (default: the header), how a value is
    written, whether it is text (left-aligned, may wrap) and its priority (0: always shown;
    in a narrow terminal the highest numbers are left out first)."""

    name: str
    key: str | None = None
    show: Callable[[Any], str] = fmt
    wrap: bool = False
    priority: int = 0

    @property
    def field(self) -> str:
        return self.key or self.name


@dataclass
class ResultTable:
    """A title, columns and rows (dicts of raw values keyed by :attr:`Col.field`)."""

    title: str | None
    columns: Sequence[Col]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def cells(self) -> list[list[str]]:
        return [[column.show(row.get(column.field)) for column in self.columns] for row in self.rows]

    def records(self) -> dict[str, Any]:
        fields = [column.field for column in self.columns]
        return {"title": self.title, "rows": [{f: _plain(row.get(f)) for f in fields} for row in self.rows]}


class Printer:
    """Prints a command's tables in one format and its other lines where they belong.

    Use :func:`printer`, which also writes the JSON document when the command ends.
    """

    def __init__(self, format: TableFormat = TableFormat.table) -> None:
        self.format = TableFormat(format)
        self._records: list[dict[str, Any]] = []

    @property
    def _stdout_is_data(self) -> bool:
        return self.format in (TableFormat.tsv, TableFormat.json)

    def line(self, message: str) -> None:
        """A sentence (rich markup allowed): on stdout beside tables, on stderr when stdout holds TSV or JSON."""
        target = errors if self._stdout_is_data else console
        # no line breaks added in a log file: a path or a number stays on one line
        target.print(message, soft_wrap=not target.is_terminal)

    def table(self, table: ResultTable) -> None:
        if self.format is TableFormat.json:
            self._records.append(table.records())
        elif self.format is TableFormat.tsv:
            _write(_tsv(table))
        elif self.format is TableFormat.markdown:
            _write(_markdown(table))
        else:
            _print_rich(table)

    def close(self) -> None:
        if self.format is TableFormat.json:
            _write(json.dumps({"tables": self._records}, ensure_ascii=False, indent=2) + "\n")


@contextmanager
def printer(format: TableFormat = TableFormat.table) -> Iterator[Printer]:
    """A :class:`Printer`; with ``json``, the document is written when the block ends without error."""
    out = Printer(format)
    yield out
    out.close()


# ----- formats ----------------------------------------------------------------------------------


def _write(content: str) -> None:
    console.file.write(content)
    console.file.flush()


def _one_line(cell: str) -> str:
    return " ".join(cell.split())


def _markdown(table: ResultTable) -> str:
    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(_one_line(c).replace("|", "\\|") for c in cells) + " |"

    lines = [f"**{table.title}**", ""] if table.title else []
    lines += [row([c.name for c in table.columns]), "|" + "|".join(":---" if c.wrap else "---:" for c in table.columns) + "|"]
    lines += [row(cells) for cells in table.cells()]
    return "\n".join(lines) + "\n\n"


def _tsv(table: ResultTable) -> str:
    import io

    buffer = io.StringIO()
    if table.title:
        buffer.write(f"# {_one_line(table.title)}\n")
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow([c.field for c in table.columns])
    writer.writerows([[_one_line(c) for c in cells] for cells in table.cells()])
    return buffer.getvalue() + "\n"


def _plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars to Python, NaN to null."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


# ----- rich, never cut ----------------------------------------------------------------------------


def _header_lines(name: str, width: int) -> str:
    """The header broken after ``_``, ``-`` or a space to fit ``width`` (rich breaks at spaces only)."""
    pieces, piece = [], ""
    for char in name:
        piece += char
        if char in "_- ":
            pieces.append(piece)
            piece = ""
    pieces.append(piece)
    lines = [""]
    for piece in filter(None, pieces):
        if lines[-1] and cell_len(lines[-1] + piece.rstrip()) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(line.rstrip() for line in lines)


def _widths(table: ResultTable, cells: list[list[str]]) -> list[tuple[int, int]]:
    """(narrowest, widest) width of each column's content with nothing cut."""
    ranges = []
    for i, column in enumerate(table.columns):
        values = max((cell_len(row[i]) for row in cells), default=0)
        header = cell_len(column.name)
        header_min = max(cell_len(line) for line in _header_lines(column.name, 1).splitlines())
        values_min = min(values, TEXT_MIN_WIDTH) if column.wrap else values
        ranges.append((max(header_min, values_min), max(header, values)))
    return ranges


def _total(widths: Sequence[int]) -> int:
    return sum(widths) + _BORDER * len(widths) + 1


def _fit(ranges: list[tuple[int, int]], columns: Sequence[Col], width: int) -> tuple[list[int], list[int]]:
    """Which columns to show and their widths: all at their widest if that fits; else
    grown from their narrowest as room allows, after leaving out the columns of least
    priority (rightmost first) while even the narrowest do not fit."""
    shown = list(range(len(ranges)))
    droppable = sorted((i for i in shown if columns[i].priority > 0), key=lambda i: (columns[i].priority, i))
    while droppable and _total([ranges[i][0] for i in shown]) > width:
        shown.remove(droppable.pop())
    widths = [ranges[i][0] for i in shown]
    room = max(0, width - _total(widths))
    # a number column grows only to its widest (its header then needs no wrapping); the
    # text columns share what is left by how much they lack
    numbers = [s for s in range(len(shown)) if not columns[shown[s]].wrap]
    texts = [s for s in range(len(shown)) if columns[shown[s]].wrap]
    for slot in numbers:
        lack = ranges[shown[slot]][1] - widths[slot]
        if lack <= room:
            widths[slot] += lack
            room -= lack
    lacking = {s: ranges[shown[s]][1] - widths[s] for s in texts}
    total_lack = sum(lacking.values())
    if total_lack:
        shares = {s: min(lack, room * lack // total_lack) for s, lack in lacking.items()}
        for slot, grow in shares.items():
            widths[slot] += grow
        room -= sum(shares.values())
        for slot in texts:  # the remainder of the rounding, left to right
            grow = min(room, ranges[shown[slot]][1] - widths[slot])
            widths[slot] += grow
            room -= grow
    return shown, widths


def _print_rich(table: ResultTable) -> None:
    cells = table.cells()
    ranges = _widths(table, cells)
    if console.is_terminal:
        shown, widths = _fit(ranges, table.columns, console.width)
    else:  # a file or a pipe: as wide as the content, whatever COLUMNS says
        shown, widths = list(range(len(ranges))), [widest for _, widest in ranges]
    rendered = Table(title=table.title, box=box.HEAVY_HEAD)
    for i, width in zip(shown, widths, strict=True):
        column = table.columns[i]
        rendered.add_column(
            Text(_header_lines(column.name, width)), width=width, no_wrap=not column.wrap, overflow="fold",
            justify="left" if column.wrap else "right",
        )  # fmt: skip
    for row in cells:
        rendered.add_row(*(Text(row[i]) for i in shown))
    # a console exactly this wide: the terminal's own (it fits) or wider when even the
    # narrowest columns do not fit, so the terminal wraps lines instead of rich cutting cells
    out = Console(
        file=console.file, width=max(_total(widths), console.width if console.is_terminal else 0),
        force_terminal=console.is_terminal, color_system=console.color_system, highlight=False,
    )  # fmt: skip
    out.print(rendered)
    left_out = [table.columns[i].name for i in range(len(table.columns)) if i not in shown]
    if left_out:
        out.print(f"[dim]Not shown at this width: {', '.join(left_out)} (--format markdown, tsv or json shows all).[/dim]")


def print_line(message: str) -> None:
    """Print one sentence of a command that prints no table (rich markup allowed); in a
    log file it stays on one line, so a path or a number is never broken."""
    Printer().line(message)


def print_table(table: ResultTable, format: TableFormat = TableFormat.table) -> None:
    """Print one table (a command that prints nothing else)."""
    with printer(format) as out:
        out.table(table)
