"""The ``topicsent`` command line.

Exit codes scripts can rely on: 0 success, 2 a problem with the input or options
(one line on stderr says which file, row and problem), 1 an unexpected failure.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from topicsent.errors import InvalidParameterError, TopicsentError
from topicsent.interfaces._adapt_cli import adapt
from topicsent.interfaces._analyze_cli import analyze, report
from topicsent.interfaces._labels_cli import labels_app
from topicsent.interfaces._llm_cli import llm_app, sft_data
from topicsent.interfaces._models_cli import models_app
from topicsent.interfaces._options import (
    AbstainBelow,
    AspectsCol,
    IdCol,
    RatingCol,
    TextCol,
    columns,
    console,
    errors,
    fmt,
    labelled_input,
    split_names,
)
from topicsent.interfaces._serve_cli import serve
from topicsent.interfaces._tables import (
    Col,
    FormatOption,
    ResultTable,
    TableFormat,
    count,
    percent,
    print_line,
    print_table,
    printer,
    text,
)
from topicsent.interfaces._topics_cli import eval_topics, topics, topics_edit

app = typer.Typer(
    name="topicsent",
    help="Topic-wise (aspect-wise) sentiment analysis and rating prediction of reviews, English and Korean.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)


# ----- demo -----------------------------------------------------------------------------------


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the result files.")] = Path("demo-output"),
    format: FormatOption = TableFormat.table,
) -> None:
    """Analyse bundled real reviews end to end (English aspects, Korean ratings).

    Trains the tfidf-lr baseline on bundled MAMS restaurant sentences and NSMC Korean
    movie reviews, analyses unseen ones, prints per-aspect sentiment and the rating
    distribution, scores both against the human labels, and writes the results and an
    HTML report (demo-output/report.html).
    """
    from topicsent.interfaces._demo import english_aspects, korean_ratings
    from topicsent.interfaces._demo import report as demo_report

    with printer(format) as shown:
        english = english_aspects(out)
        aspect_columns = [
            Col("aspect", wrap=True), Col("mentions", show=count), Col("% of reviews", key="review_share", show=percent),
            *(Col(p, show=percent, priority=1) for p in ("positive", "negative", "neutral")),
            Col("mean conf.", key="mean_confidence", priority=2),
        ]  # fmt: skip
        shown.table(ResultTable(english.title, aspect_columns, english.summary))
        scores = english.agreement
        shown.line(
            f"{len(english.analyses)} reviews. Agreement with human labels: polarity accuracy {scores['polarity_accuracy']:.1%} "
            f"(macro-F1 {scores['polarity_macro_f1']:.3f}) on their aspects, aspect detection F1 {scores['detection_f1']:.3f}."
        )
        shown.line(f"Per-review results: [bold]{english.output}[/bold]\n")

        korean = korean_ratings(out)
        summary = korean.summary
        distribution = [
            {"rating": rating, "reviews": n, "share": n / summary["answered"]} for rating, n in summary["distribution"].items()
        ]
        rating_columns = [Col("predicted rating", key="rating"), Col("reviews", show=count), Col("share", show=percent)]
        shown.table(ResultTable(korean.title, rating_columns, distribution))
        example = next(a for a in korean.analyses if a.status == "ok")
        scores = korean.agreement
        shown.line(
            f"{summary['reviews']} reviews, mean predicted rating {summary['mean_rating']:.2f}. "
            f"Against the reviewers' own ratings: exact {scores['accuracy']:.1%}, MAE {scores['mae']:.2f}, "
            f"QWK {scores['qwk']:.3f}. "
            f"Example: review {example.review_id} -> {example.overall.rating:.0f} ({example.overall.polarity})."
        )
        shown.line(f"Per-review results: [bold]{korean.output}[/bold]")
        shown.line(f"\nHTML report of both (charts, examples; opens offline): [bold]{demo_report(out)}[/bold]")


# ----- eval -----------------------------------------------------------------------------------


@app.command("eval")
def eval_command(
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", "-d", help="Dataset name(s), comma-separated, or 'all' (default: mams-acsa, unless --train)."),
    ] = None,
    methods: Annotated[
        str, typer.Option("--methods", "-m", help="Method name(s), comma-separated, or 'all'.")
    ] = "majority,tfidf-lr",
    limit: Annotated[int | None, typer.Option(help="Seeded sample of at most N reviews per split, for a quick run.")] = None,
    test_limit: Annotated[
        int | None, typer.Option(help="Score on a seeded sample of N test reviews (train stays whole), e.g. for LLMs.")
    ] = None,
    detection: Annotated[
        bool, typer.Option(help="Also score aspect detection (a second pass); --no-detection halves LLM calls.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed for sampling and for the methods.")] = 0,
    tune: Annotated[bool, typer.Option(help="Search each method's tuning grid on the validation split.")] = True,
    calibration_sample: Annotated[
        int,
        typer.Option(
            min=0,
            help="Validation reviews each method's confidence is calibrated on; test ECE before and after is reported. "
            "0 skips it (an LLM answers each one).",
        ),
    ] = 2_000,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the JSON and CSV results.")] = Path("results"),
    train_file: Annotated[
        Path | None, typer.Option("--train", help="Your labelled reviews (CSV, TSV, JSONL or Parquet) to train on.")
    ] = None,
    test_file: Annotated[Path | None, typer.Option("--test", help="With --train: labelled reviews to score on.")] = None,
    validation_file: Annotated[
        Path | None,
        typer.Option("--validation", help="With --train: labelled reviews to tune and calibrate on (default: 10% of --train)."),
    ] = None,
    test_size: Annotated[
        float | None,
        typer.Option(help="With --train and no --test: the seeded, stratified share of --train scored on (default 0.2)."),
    ] = None,
    task: Annotated[str | None, typer.Option(help="With --train: acsa, atsa or rating (default: from the data).")] = None,
    text_col: TextCol = "text",
    id_col: IdCol = None,
    rating_col: RatingCol = None,
    aspects_col: AspectsCol = None,
    taxonomy: Annotated[
        Path | None,
        typer.Option(help="With --train: taxonomy.json (from `topicsent topics`): its topic names are the categories."),
    ] = None,
    format: FormatOption = TableFormat.table,
) -> None:
    """Compare methods on datasets: train on train, tune on validation, score on test.

    Your own labelled files are evaluated the same way (--train, and --test or a seeded
    stratified --test-size share; the categories and the rating scale are the training
    file's, or --taxonomy's).

    Prints one table per dataset (quality, training time, throughput, peak memory,
    gain over majority and speed relative to tfidf-lr, both from this same run) and
    writes JSON and CSV with the git commit, so runs can be compared across commits.

    Examples:

      topicsent eval --dataset mams-acsa --methods majority,tfidf-lr

      topicsent eval --dataset all --methods all --limit 2000

      topicsent eval -d mams-acsa -m "tfidf-lr,embed-head,embed-head[design=pair]"

      topicsent eval -d semeval14-acsa --test-limit 200 --no-detection -m "tfidf-lr,llm[strategy=retrieval]"

      topicsent eval --train labels.csv --id-col id --aspects-col aspects -m majority,tfidf-lr

      topicsent eval --train stars.csv --test held_out.csv --rating-col stars -m all
    """
    from topicsent.data import DATASETS
    from topicsent.eval import MethodChoice, run_evaluation, write_run
    from topicsent.methods import method_names, split_method_specs

    datasets = split_names(dataset or "mams-acsa", list(DATASETS), "dataset") if dataset or not train_file else []
    specs = method_names() if methods == "all" else split_method_specs(methods)
    chosen = [MethodChoice.parse(spec) for spec in specs]  # parsed once, here: a typo fails now, not after an hour
    user_splits, sources = {}, {}
    if train_file is not None:
        cols = columns(text_col, id_col, rating_col, aspects_col)
        splits, source = _file_splits(train_file, test_file, validation_file, test_size, cols, task, taxonomy, seed)
        name = splits.train.name.split("/")[0]
        datasets.append(name)
        user_splits[name], sources[name] = splits, source
    elif any(value is not None for value in (test_file, validation_file, test_size, taxonomy, task)):
        raise InvalidParameterError("--test, --validation, --test-size, --task and --taxonomy go with --train FILE")

    with printer(format) as shown:

        def save_and_report(run: dict, result) -> None:
            write_run(run, out)  # after every method: an interrupted run keeps what it measured
            shown.line(
                f"[dim]{result.dataset} / {escape(result.method)}: {result.primary_metric} {result.score:.3f}, "
                f"train {result.train_seconds:.1f}s, {fmt(result.reviews_per_second)} reviews/s{_stage_shares(result)}[/dim]"
            )

        run = run_evaluation(
            datasets, chosen, limit=limit, test_limit=test_limit, detection=detection, seed=seed, tune=tune,
            calibration_sample=calibration_sample, on_result=save_and_report, splits=user_splits, sources=sources,
        )  # fmt: skip
        for name in datasets:
            for note in run["run"]["notes"].get(name, []):
                shown.line(f"[dim]{name}: {escape(note)}[/dim]")
            rows = [r for r in run["results"] if r["dataset"] == name]
            if rows:
                shown.table(_results_table(name, rows))
        json_path, csv_path = write_run(run, out)
        shown.line(f"Results: {json_path} and {csv_path} (commit {run['run']['commit']})")


def _file_splits(train_file, test_file, validation_file, test_size, cols, task, taxonomy, seed):
    """The splits of the user's files and what the run record says about their source."""
    from topicsent.data import TEST_SHARE, file_splits
    from topicsent.topics import Taxonomy

    if test_file is not None and test_size is not None:
        raise InvalidParameterError("give --test FILE or --test-size, not both")
    categories = Taxonomy.load(taxonomy).categories if taxonomy else None
    shares = {"test_size": test_size} if test_size is not None else {}
    splits = file_splits(
        train_file, test=test_file, validation=validation_file, columns=cols, task=task, categories=categories, seed=seed,
        **shares,
    )  # fmt: skip
    source = {
        "train": str(train_file), "test": str(test_file) if test_file else None,
        "validation": str(validation_file) if validation_file else None,
        "test_size": None if test_file else (test_size if test_size is not None else TEST_SHARE),
        "columns": {"text": cols.text, "id": cols.id, "rating": cols.rating, "aspects": cols.aspects},
        "taxonomy": str(taxonomy) if taxonomy else None,
        "sizes": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
        "label_space": splits.train.label_space.to_dict(),
    }  # fmt: skip
    return splits, source


def _stage_shares(result) -> str:
    """For a cascade: ', answered by 1:tfidf-lr 80%, 2:embed-head 20%'; else nothing."""
    if not result.answered_by:
        return ""
    return ", answered by " + ", ".join(f"{escape(model)} {share:.0%}" for model, share in result.answered_by.items())


_METRIC_COLUMNS = {
    "acsa": ["polarity_accuracy", "polarity_macro_f1", "detection_f1", "joint_f1", "ece", "ece_calibrated"],
    "atsa": ["polarity_accuracy", "polarity_macro_f1", "detection_f1", "joint_f1", "ece", "ece_calibrated"],
    "rating": ["accuracy", "macro_f1", "mae", "qwk", "ece", "ece_calibrated"],
}


def _results_table(dataset: str, rows: list[dict]) -> ResultTable:
    metrics = _METRIC_COLUMNS[rows[0]["task"]]
    # in a narrow terminal the quality metrics stay; costs and comparisons go first
    columns = [Col("method", wrap=True), *(Col(m, priority=2 if m.startswith("ece") else 0) for m in metrics)]
    if any(row.get("usage") for row in rows):
        columns += [
            Col("answered", key="coverage", show=percent, priority=1),
            Col("tokens/review", key="tokens_per_review", priority=3),
        ]
    columns += [
        Col("train s", key="train_seconds", show=lambda v: f"{v:.1f}", priority=1),
        Col("reviews/s", key="reviews_per_second", priority=1), Col("peak MB", key="peak_rss_mb", priority=4),
        Col("Δ vs majority", key="gain_over_majority", priority=1), Col("speed vs tfidf-lr", key="speed_vs_tfidf_lr", priority=3),
    ]  # fmt: skip
    records = []
    for row in rows:
        usage = row.get("usage") or {}
        tokens = usage.get("input_tokens_per_review", 0) + usage.get("output_tokens_per_review", 0) if usage else None
        records.append(
            {
                "method": row["method"],
                **row["metrics"],
                "coverage": row["metrics"].get("coverage", 0),
                "tokens_per_review": tokens,
            }
            | {key: row[key] for key in ("train_seconds", "reviews_per_second", "peak_rss_mb")}
            | row["relative"]
        )
    return ResultTable(f"{dataset} (test: {rows[0]['n_test']:,} reviews, train: {rows[0]['n_train']:,})", columns, records)


# ----- train / predict -----------------------------------------------------------------------


@app.command()
def train(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder to save the trained model in.")] = None,
    method: Annotated[
        str | None,
        typer.Option("--method", "-m", help="Method name (see `topicsent methods`); default tfidf-lr (--labels: the project's)."),
    ] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", "-d", help="Train on a built-in dataset's train split.")] = None,
    input_file: Annotated[Path | None, typer.Argument(help="Labelled reviews: CSV, TSV, JSONL or Parquet (.gz text ok).")] = None,
    task: Annotated[str | None, typer.Option(help="acsa, atsa or rating (default: from the data).")] = None,
    text_col: TextCol = "text",
    id_col: IdCol = None,
    rating_col: RatingCol = None,
    aspects_col: AspectsCol = None,
    params: Annotated[str, typer.Option(help="Method parameters as JSON, e.g. '{\"C\": 0.5}'.")] = "{}",
    base: Annotated[
        str | None,
        typer.Option(help="Base model of `finetune` or `sft`: a packaged model (`topicsent models list`), a folder, a .gguf."),
    ] = None,
    taxonomy: Annotated[
        Path | None, typer.Option(help="taxonomy.json (from `topicsent topics`): its topic names are the ACSA categories.")
    ] = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            help="With --dataset: calibrate the confidence on (up to 2,000 reviews of) its validation split. "
            "Not for `llm` unless asked with --calibration-file: each review costs a model call."
        ),
    ] = True,
    calibration_file: Annotated[
        Path | None, typer.Option(help="Labelled reviews not used for training (same columns) to calibrate the confidence on.")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="A labelling project folder (`topicsent serve`, /label): retrain it from its labels, like its Retrain button.",
        ),
    ] = None,
) -> None:
    """Train a method on labelled reviews and save it.

    Confidences are then calibrated on held-out labelled reviews (a built-in dataset's
    validation split, or --calibration-file), so a confidence of 0.8 means about 80% of
    such answers are right; `predict --abstain-below` and the `cascade` method rely on it.

    Examples:

      topicsent train --dataset mams-acsa -o models/mams

      topicsent train reviews.csv --rating-col stars -o models/stars

      topicsent train topics/labelled.jsonl --aspects-col aspects --taxonomy topics/taxonomy.json -o models/topics

      topicsent train --dataset mams-acsa --method sft --base smollm2-135m-instruct --params '{"max_steps": 300}' -o models/sft

      topicsent train --labels topicsent-projects/shoes -o models/shoes
    """
    if labels is not None:
        if base is not None:
            raise InvalidParameterError(
                "--base does not apply with --labels: a project trains its own method (set it in --params)"
            )
        _train_project(labels, method, _json_params(params), out, other_input=bool(dataset or input_file))
        return
    method = method or "tfidf-lr"
    if out is None:
        raise InvalidParameterError("--out is needed: the folder to save the trained model in")
    from topicsent.methods import make_method
    from topicsent.topics import Taxonomy

    categories = Taxonomy.load(taxonomy).categories if taxonomy and input_file else None
    cols = columns(text_col, id_col, rating_col, aspects_col)
    reviews, task = labelled_input(dataset, input_file, cols, task=task, categories=categories)
    model = make_method(method, **_json_params(params) | ({"base": base} if base else {}))
    use_dataset = dataset if calibrate and model.calibrate_by_default else None
    # read and check the calibration reviews against the training labels now: a category the
    # model will not know fails in one line before training, not after it
    held_out = _calibration_reviews(use_dataset, calibration_file, cols, task, reviews.label_space)
    model.fit(reviews, task)
    model.save(out)  # before the optional calibration: whatever happens there, the trained model is kept
    print_line(f"Trained {method} for {model.task_.value} on {len(reviews):,} reviews; saved to [bold]{out}[/bold]")
    if held_out is not None:
        try:
            model.calibrate(held_out)
        except InvalidParameterError as error:
            print_line(f"[dim]Confidence not calibrated: {error}[/dim]")
            return
        model.save_calibration(out)
        print_line(f"Confidence calibrated on {len(held_out):,} held-out reviews")


def _train_project(folder: Path, method: str | None, params: dict, out: Path | None, *, other_input: bool) -> None:
    """Retrain a labelling project (the model in its folder, its learning curve, the
    page's pre-filled answers), and copy the model to ``out``."""
    from topicsent.labelling import LabelProject, retrain

    if other_input:
        raise InvalidParameterError("--labels trains on a project's labels; give no labelled file or --dataset with it")
    project = LabelProject(folder)
    record = retrain(project, method, params)
    curve = ", ".join(f"{p['labels']}: {fmt(p['accuracy'])}" for p in record["curve"])
    print_line(
        f"Trained {record['method']} on {record['labels']:,} labels of project {project.name}; "
        f"held-out accuracy ({record['held_out']} reviews) by labels: {curve}"
    )
    if record["note"]:
        print_line(f"[dim]{record['note']}[/dim]")
    if out is not None:
        _copy_model(project.folder / "model", out)
        print_line(f"Saved to [bold]{out}[/bold]")


def _copy_model(source: Path, out: Path) -> None:
    """Copy a saved model folder to ``out`` whole (no file of an older model left in it)."""
    import shutil

    from topicsent._folders import folder_replaced

    with folder_replaced(out) as scratch:
        shutil.copytree(source, scratch, dirs_exist_ok=True)


def _calibration_reviews(dataset: str | None, calibration_file: Path | None, cols, task: str | None, space):
    """Labelled reviews the model did not train on: --calibration-file (its categories
    and ratings checked against the training data's ``space``, naming the row), else a
    seeded sample of the dataset's validation split."""
    from topicsent.eval._harness import CALIBRATION_SAMPLE

    if calibration_file is None and dataset is None:
        return None
    source = None if calibration_file else dataset
    reviews = labelled_input(source, calibration_file, cols, task=task, split="validation", space=space)[0]
    return reviews if calibration_file else reviews.sample(CALIBRATION_SAMPLE)


def _json_params(text: str) -> dict:
    try:
        params = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidParameterError(f"--params is not valid JSON ({error.msg})") from None
    if not isinstance(params, dict):
        raise InvalidParameterError("--params must be a JSON object")
    return params


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Option("--model", help="A folder written by `topicsent train`.")],
    input_file: Annotated[
        Path, typer.Argument(help="Reviews: CSV, TSV, JSONL or Parquet (.gz text ok); '-' reads JSONL from stdin.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results: .jsonl (nested), .parquet or .csv (flat).")] = Path(
        "analysis.jsonl"
    ),
    text_col: TextCol = "text",
    id_col: IdCol = None,
    max_cost: Annotated[
        float | None, typer.Option(help="USD budget of an `llm` model's calls; rows after it is spent get status 'error'.")
    ] = None,
    abstain_below: AbstainBelow = None,
) -> None:
    """Analyse reviews with a trained model and write one result per review.

    Rows with an empty text are kept with status 'error', so the output has one row per
    input review.

    Example:

      topicsent predict --model models/mams reviews.csv --text-col body -o results.parquet

      topicsent predict --model models/mams reviews.csv --abstain-below 0.7 -o sure.jsonl
    """
    from topicsent.data import read_reviews
    from topicsent.methods import BaseMethod
    from topicsent.schema import check_output_path, write_analyses

    check_output_path(out)
    model = BaseMethod.load(model_dir)
    if max_cost is not None:
        model.set_params(max_cost=max_cost)
    reviews = read_reviews(str(input_file), columns(text_col, id_col, None, None), require_text=False)
    analyses = model.predict(reviews, abstain_below=abstain_below)
    write_analyses(analyses, out)
    statuses = Counter(a.status for a in analyses)
    breakdown = ", ".join(f"{count:,} {status}" for status, count in statuses.most_common())
    print_line(f"Analysed {len(analyses):,} reviews with {model.name} ({breakdown}); results: [bold]{out}[/bold]")


app.command("adapt")(adapt)
app.command("analyze")(analyze)
app.command("report")(report)
app.command("serve")(serve)


# ----- listings -------------------------------------------------------------------------------


@app.command()
def datasets(format: FormatOption = TableFormat.table) -> None:
    """List the built-in datasets (from the shared data folder) with the reviews of each split."""
    from topicsent.data import DATASETS

    columns = [
        *(Col(name, show=text, wrap=True, priority=1 if name == "licence" else 0)
          for name in ("name", "task", "language", "description", "licence")),
        *(Col(split, show=count) for split in ("train", "val", "test")),
    ]  # fmt: skip
    rows = [
        {"name": i.name, "task": i.task.value, "language": i.language, "description": i.description, "licence": i.licence,
         **dict(zip(("train", "val", "test"), i.sizes or (None, None, None), strict=True))}
        for i in DATASETS.values()
    ]  # fmt: skip
    print_table(ResultTable("Built-in datasets", columns, rows), format)


@app.command()
def methods(format: FormatOption = TableFormat.table) -> None:
    """List the registered methods and the tasks each can do."""
    from topicsent.methods import method_class, method_names

    rows = []
    for name in method_names():
        cls = method_class(name)
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        rows.append({"name": name, "tasks": ", ".join(sorted(t.value for t in cls.supported_tasks)), "description": summary})
    columns = [Col(name, show=text, wrap=True) for name in ("name", "tasks", "description")]
    print_table(ResultTable("Registered methods", columns, rows), format)


@app.command()
def schema() -> None:
    """Print the JSON Schema of one review analysis (the output of every method)."""
    from topicsent.schema import json_schema

    console.print_json(json.dumps(json_schema()))


app.command("topics")(topics)
app.command("topics-edit")(topics_edit)
app.command("eval-topics")(eval_topics)
app.command("sft-data")(sft_data)
app.add_typer(models_app, name="models")
app.add_typer(llm_app, name="llm")
app.add_typer(labels_app, name="labels")


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2 (typer already
    does the same for usage errors); anything else is a bug and keeps its traceback."""
    try:
        app()
    except TopicsentError as error:
        from rich.markup import escape

        # escaped: messages hold brackets that are not markup (topicsent[encoders], a user's column name)
        errors.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(2)
