"""``topicsent llm``: what LLM calls were made, what they cost, and the cache behind them."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from topicsent.interfaces._options import (
    AspectsCol,
    IdCol,
    RatingCol,
    TextCol,
    columns,
    labelled_input,
    split_names,
)
from topicsent.interfaces._tables import Col, FormatOption, ResultTable, TableFormat, count, print_line, printer, text

llm_app = typer.Typer(help="LLM call log and response cache ($TOPICSENT_CACHE_DIR/llm.sqlite).", no_args_is_help=True)


@llm_app.command("log")
def log(
    hours: Annotated[float | None, typer.Option(help="Only calls of the last N hours.")] = None,
    last: Annotated[int, typer.Option(help="Also list the N most recent calls (0: totals only).")] = 10,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print only the totals, as a JSON list (for scripts; --format json prints both tables)."),
    ] = False,
    format: FormatOption = TableFormat.table,
) -> None:
    """Totals per backend and model (calls, cache hits, tokens, cost, mean latency),
    then the most recent calls.

    Example: topicsent llm log --hours 24 --last 20
    """
    from topicsent.llm import LlmStore

    store = LlmStore()
    calls = store.calls(since=time.time() - hours * 3600 if hours else None)
    totals: dict[tuple[str, str], dict] = defaultdict(
        lambda: {
            "calls": 0,
            "cache_hits": 0,
            "failed": 0,
            "unparsed": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.0,
            "latency_ms": 0.0,
        }
    )
    for call in calls:
        total = totals[(call.backend, call.model)]
        total["calls"] += 1
        total["cache_hits"] += call.cache_hit
        total["failed"] += call.outcome != "ok"
        total["unparsed"] += call.parse_status == "failed"  # answers that failed their check (a repair may follow)
        total["input_tokens"] += call.input_tokens
        total["output_tokens"] += call.output_tokens
        total["cost_usd"] += call.cost_usd or 0.0
        total["latency_ms"] += call.latency_ms
    if as_json:
        print(json.dumps([{"backend": b, "model": m} | t for (b, m), t in totals.items()], indent=2))
        return
    rows = []
    for (backend, model), total in sorted(totals.items()):
        made = total["calls"] - total["cache_hits"]
        rows.append(
            {"backend": backend, "model": model, **total, "mean_latency_s": total["latency_ms"] / made / 1000 if made else None}
        )
    columns = [
        Col("backend", show=text, wrap=True), Col("model", show=text, wrap=True), Col("calls", show=count),
        Col("cache hits", key="cache_hits", show=count), Col("failed", show=count, priority=1),
        Col("unparsed", show=count, priority=1),
        Col("tokens in", key="input_tokens", show=count, priority=1),
        Col("tokens out", key="output_tokens", show=count, priority=1),
        Col("cost USD", key="cost_usd", show=lambda v: f"{v:.4f}"), Col("mean latency s", key="mean_latency_s", priority=1),
    ]  # fmt: skip
    with printer(format) as shown:
        shown.table(ResultTable(f"LLM calls in {store.path}" + (f" (last {hours:g} h)" if hours else ""), columns, rows))
        if last and calls:
            shown.table(_recent_calls(calls[:last]))


def _recent_calls(calls) -> ResultTable:
    rows = [
        {"time": datetime.fromtimestamp(call.timestamp).isoformat(timespec="seconds"), "model": call.model,
         "prompt": call.prompt_hash, "in": call.input_tokens, "out": call.output_tokens, "latency_s": call.latency_ms / 1000,
         "cost_usd": call.cost_usd, "cache": "hit" if call.cache_hit else "", "outcome": call.outcome,
         "method": call.method, "run": call.run_id, "parsed": call.parse_status}
        for call in calls
    ]  # fmt: skip
    columns = [
        Col("time", show=text), Col("model", show=text, wrap=True), Col("prompt", show=text, wrap=True, priority=2),
        Col("in", show=count, priority=1), Col("out", show=count, priority=1),
        Col("latency s", key="latency_s", show=lambda v: f"{v:.2f}"),
        Col("cost USD", key="cost_usd", show=lambda v: "?" if v is None else f"{v:.5f}", priority=1),
        Col("cache", show=text), Col("outcome", show=text, wrap=True), Col("parsed", show=text),
        Col("method", show=text, priority=2), Col("run", show=text, priority=2),
    ]  # fmt: skip
    return ResultTable(f"{len(calls)} most recent calls", columns, rows)


def _teacher_labelled(reviews, teacher_dirs: list[Path], min_confidence: float, agree_on: str, max_cost: float | None):
    from topicsent.methods import BaseMethod
    from topicsent.teacher import teacher_labels

    teachers = [BaseMethod.load(path) for path in teacher_dirs]
    for model in teachers:
        if max_cost is not None and "max_cost" in model.get_params():
            model.set_params(max_cost=max_cost)
    result = teacher_labels(teachers, reviews, min_confidence=min_confidence, agree_on=agree_on)
    reasons = "; ".join(f"{count:,} {reason}" for reason, count in result.dropped.most_common()) or "none"
    print_line(f"Teacher labels kept for {len(result.reviews):,} of {result.asked:,} reviews (dropped: {reasons})")
    return result.reviews


def sft_data(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file of chat examples to write.")],
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="A built-in dataset.")] = None,
    input_file: Annotated[Path | None, typer.Argument(help="Labelled reviews: CSV, TSV, JSONL or Parquet.")] = None,
    split: Annotated[str, typer.Option(help="Split of a built-in dataset: train, validation or test.")] = "train",
    task: Annotated[str | None, typer.Option(help="acsa, atsa or rating (default: from the data).")] = None,
    forms: Annotated[
        str, typer.Option(help="detect (model finds aspects), given (it rates given aspects), or both.")
    ] = "detect,given",
    evidence: Annotated[bool, typer.Option(help="Include evidence quotes where the labels have spans (terms).")] = False,
    teacher: Annotated[
        list[Path] | None,
        typer.Option(
            help="A trained model (e.g. an `llm` model) that labels the reviews instead of their own labels; "
            "repeat it to keep only reviews all teachers agree on."
        ),
    ] = None,
    min_confidence: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="With --teacher: keep a review only if every answer is this sure.")
    ] = 0.0,
    agree_on: Annotated[
        str,
        typer.Option(
            help="With several teachers: 'review' keeps a review whose whole answer they share; 'aspect' keeps the "
            "aspects they share (an incomplete aspect list, so only the 'given' form is written)."
        ),
    ] = "review",
    max_cost: Annotated[float | None, typer.Option(help="With --teacher: USD budget of each `llm` teacher's calls.")] = None,
    text_col: TextCol = "text",
    id_col: IdCol = None,
    rating_col: RatingCol = None,
    aspects_col: AspectsCol = None,
    file_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="topicsent (for the `sft` method's sft_file) or openai (the chat JSONL of OpenAI's fine-tuning API).",
        ),
    ] = "topicsent",
) -> None:
    """Build instruction-tuning data (chat format) from labelled reviews, with the `llm`
    method's own prompt templates, so a tuned model answers the way the parser expects.

    Examples:

      topicsent sft-data --dataset mams-acsa -o sft/mams.jsonl

      topicsent sft-data reviews.csv --rating-col stars -o sft/stars.jsonl

    For OpenAI's hosted fine-tuning (then use the tuned model through the `llm` method
    with backend=openai and evidence=false; see docs/hosted-fine-tuning.md):

      topicsent sft-data labels.csv --aspects-col aspects --format openai -o sft/openai-train.jsonl

    With teachers, unlabelled reviews get the labels of trained models (an `llm` model's
    cache, budget and unparsed handling included); only answers every teacher gives,
    agrees on and is sure of are kept:

      topicsent sft-data new.csv --teacher models/qwen --teacher models/finetune --min-confidence 0.7 -o sft/distilled.jsonl
    """
    from topicsent.methods.llm._sft_data import FILE_FORMATS, FORMS, OPENAI_MIN_EXAMPLES, sft_examples, write_sft
    from topicsent.schema import Task

    split_names(file_format, list(FILE_FORMATS), "format")  # a typo fails before any teacher call
    cols = columns(text_col, id_col, rating_col, aspects_col)
    reviews, found_task = labelled_input(dataset, input_file, cols, task=task, split=split)
    chosen_forms = split_names(forms, list(FORMS), "form")
    if teacher:
        reviews = _teacher_labelled(reviews, teacher, min_confidence, agree_on, max_cost)
        found_task = reviews.task.value
        if agree_on == "aspect":
            chosen_forms = ["given"]
    chosen = Task(found_task or "acsa")
    examples = sft_examples(reviews, chosen, forms=chosen_forms, evidence=evidence)
    count = write_sft(examples, out, file_format=file_format)
    print_line(f"Wrote {count:,} chat examples from {len(reviews):,} reviews ({chosen.value}) to [bold]{out}[/bold]")
    if file_format == "openai" and count < OPENAI_MIN_EXAMPLES:
        print_line(f"[yellow]OpenAI's fine-tuning API needs at least {OPENAI_MIN_EXAMPLES} examples; label more reviews[/yellow]")
