"""Progress bars for long steps (rate and ETA), nested safely.

Rich allows one live display at a time, so a bar opened while another is showing
(a method's predict inside the evaluation harness) joins it as another line.
Bars draw on stderr and only on a terminal, so piped output stays clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

_active: list[Progress] = []


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f}/s" if task.speed else "", style="progress.data.speed")


def _new_progress() -> Progress:
    console = Console(stderr=True)
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        _RateColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )  # fmt: skip


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Show a bar while the block runs; call the yielded function with steps done."""
    if _active:
        progress = _active[-1]
        task_id = progress.add_task(description, total=total)
        try:
            yield lambda steps=1: progress.advance(task_id, steps)
        finally:
            progress.remove_task(task_id)
        return
    progress = _new_progress()
    with progress:
        _active.append(progress)
        task_id = progress.add_task(description, total=total)
        try:
            yield lambda steps=1: progress.advance(task_id, steps)
        finally:
            _active.pop()
