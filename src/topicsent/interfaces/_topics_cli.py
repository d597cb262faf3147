"""The ``topics`` and ``topics-edit`` commands: discovery, per-topic sentiment, drivers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from topicsent.errors import InputDataError, InvalidParameterError
from topicsent.interfaces._options import IdCol, RatingCol, TextCol, columns
from topicsent.interfaces._tables import Col, FormatOption, ResultTable, TableFormat, count, percent, print_line, printer, text
from topicsent.schema import write_csv

SEGMENTS_FILE = "segments.parquet"
TAXONOMY_FILE = "taxonomy.json"
LABELLED_FILE = "labelled.jsonl"


def topics(
    input_file: Annotated[Path, typer.Argument(help="Reviews: CSV, TSV, JSONL or Parquet (.gz text ok).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for taxonomy.json, segments.parquet and the tables.")] = Path(
        "topics"
    ),
    unit: Annotated[str, typer.Option(help="'review', or 'sentence' so one review can touch several topics.")] = "review",
    encoder: Annotated[str | None, typer.Option(help="Sentence encoder (default: MiniLM for English, e5 for Korean).")] = None,
    min_topic_size: Annotated[
        int | None, typer.Option(help="Smallest group called a topic (default: 0.5% of units, >= 10).")
    ] = None,
    n_topics: Annotated[int | None, typer.Option(help="Merge similar topics down to this many.")] = None,
    outlier_threshold: Annotated[
        str,
        typer.Option(
            help="Which units clustering left in no topic join their nearest topic: 'auto' (those at least as similar "
            "to its centre as 95% of clustered units are to theirs; the summary gives the threshold), a cosine "
            "similarity in [-1, 1], or 'none' (all stay out).",
        ),
    ] = "auto",
    outlier_share: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Instead: lower the threshold until at most this share of units is in no topic (e.g. 0.1)."
        ),
    ] = None,
    sentiment_model: Annotated[
        Path | None, typer.Option(help="A trained rating model (topicsent train) giving each unit's sentiment.")
    ] = None,
    text_col: TextCol = "text",
    id_col: IdCol = None,
    rating_col: RatingCol = None,
    date_col: Annotated[str | None, typer.Option("--date-col", help="Column with the review date: monthly trend.")] = None,
    namer: Annotated[
        str | None,
        typer.Option(help="BACKEND:MODEL, e.g. llamacpp:qwen2.5-coder-1.5b-instruct: an LLM names and describes each topic."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of UMAP and the bootstrap.")] = 0,
    format: FormatOption = TableFormat.table,
) -> None:
    """Discover what reviews talk about, how they feel about each topic, and what drives ratings.

    Topics come from sentence embeddings, UMAP and HDBSCAN. Units clustering leaves
    in no topic join their nearest topic when similar enough to its centre (the
    threshold is chosen automatically and printed; --outlier-share or
    --outlier-threshold to change it); the rest stay in no topic, and the summary
    says how many and why. With --rating-col (or
    --sentiment-model) each topic also gets its polarity shares and mean rating, and
    key-driver analysis tells which topics go with higher or lower stars.

    Examples:

      topicsent topics reviews.csv --rating-col stars --unit sentence -o topics/

      topicsent topics reviews.csv --namer llamacpp:qwen2.5-coder-1.5b-instruct -o topics/

      topicsent topics-edit topics/ --rename 3=fit --merge 4,7=fabric

      topicsent train topics/labelled.jsonl --aspects-col aspects --taxonomy topics/taxonomy.json -o models/aspects
    """
    from topicsent.data import read_reviews
    from topicsent.methods import BaseMethod
    from topicsent.topics import analyze_topics, check_outlier_options

    threshold = _outlier_threshold(outlier_threshold)
    check_outlier_options(threshold, outlier_share)  # before the reviews are read and embedded
    reviews = read_reviews(input_file, columns(text_col, id_col, rating_col, None, date_col), require_text=False)
    method = BaseMethod.load(sentiment_model) if sentiment_model else None
    dates = {r.id: r.meta["date"] for r in reviews if "date" in r.meta} if date_col else None
    analysis = analyze_topics(
        reviews, unit=unit, encoder=encoder, min_topic_size=min_topic_size, n_topics=n_topics, outlier_threshold=threshold,
        outlier_share=outlier_share, sentiment_method=method, dates=dates, namer=namer, seed=seed,
    )  # fmt: skip
    analysis.write(out, reviews)
    taxonomy = analysis.discovery.taxonomy
    with printer(format) as shown:
        shown.table(_topics_table(analysis))
        shown.line(
            f"{len(taxonomy.topics)} topics in {len(reviews):,} reviews ({taxonomy.n_segments:,} {unit}s, "
            f"{taxonomy.n_outliers:,} in no topic) in {analysis.discovery.seconds:.0f} s."
        )
        if taxonomy.outliers is not None:
            shown.line(taxonomy.outliers.explain(taxonomy.n_segments, unit))
        for line in analysis.findings:
            shown.line(f"  - {line}")
        shown.line(f"Results: [bold]{out}[/bold] (edit names in {TAXONOMY_FILE}, or use topicsent topics-edit)")


def _outlier_threshold(value: str) -> float | str | None:
    """--outlier-threshold: 'auto', 'none' or a number."""
    if value.strip().lower() in ("auto", "none"):
        return None if value.strip().lower() == "none" else "auto"
    try:
        return float(value)
    except ValueError:
        raise InvalidParameterError(f"--outlier-threshold must be 'auto', 'none' or a number in [-1, 1]; got {value!r}") from None


def _topics_table(analysis) -> ResultTable:
    """One row per topic (with sentiment and ratings when known), then the units in no topic."""
    taxonomy = analysis.discovery.taxonomy
    columns = [Col("id"), Col("topic", show=text, wrap=True), Col("units", show=count)]
    rows = [{"id": t.id, "topic": t.name, "units": t.size} for t in taxonomy.topics]
    if analysis.summary is not None:
        columns += [
            Col("reviews", show=count, priority=1), Col("% of reviews", key="review_share", show=percent),
            *(Col(p, show=percent, priority=2 if p == "mixed" else 1) for p in ("positive", "negative", "mixed")),
            Col("mean rating", key="mean_rating"),
        ]  # fmt: skip
        fields = ["reviews", "review_share", "positive", "negative", "mixed", "mean_rating"]
        by_topic = analysis.summary.set_index("topic_id")[fields].to_dict("index")  # keeps each column's type
        rows = [row | by_topic.get(row["id"], {}) for row in rows]
    rows.append({"id": -1, "topic": "(no topic)", "units": taxonomy.n_outliers})
    return ResultTable("Topics", columns, rows)


def topics_edit(
    folder: Annotated[Path, typer.Argument(help="A folder written by `topicsent topics`.")],
    rename: Annotated[list[str] | None, typer.Option(help="ID=NAME: give topic ID a name (repeatable).")] = None,
    merge: Annotated[list[str] | None, typer.Option(help="ID,ID[,...][=NAME]: make several topics one (repeatable).")] = None,
) -> None:
    """Rename and merge discovered topics; the segments and labelled reviews follow.

    Example:

      topicsent topics-edit topics/ --rename 0=fit --merge 2,5=fabric --merge 3,8
    """
    from topicsent.topics import Taxonomy

    taxonomy = Taxonomy.load(folder / TAXONOMY_FILE)
    for spec in merge or []:
        ids, _, name = spec.partition("=")
        taxonomy = taxonomy.merged([_topic_id(part) for part in ids.split(",")], name.strip() or None)
    renames = {}
    for spec in rename or []:
        topic_id, equals, name = spec.partition("=")
        if not equals or not name.strip():
            raise InvalidParameterError(f"--rename {spec!r}: write ID=NAME")
        renames[_topic_id(topic_id)] = name.strip()
    taxonomy = taxonomy.renamed(renames)
    taxonomy.save(folder / TAXONOMY_FILE)
    _relabel_outputs(folder, taxonomy)
    print_line(f"{len(taxonomy.topics)} topics: {', '.join(taxonomy.categories)}; saved to [bold]{folder}[/bold]")


def _topic_id(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidParameterError(f"{text!r} is not a topic id (a number from taxonomy.json)") from None


def _relabel_outputs(folder: Path, taxonomy) -> None:
    """Point segments at merged topics and their new names; rebuild labelled.jsonl."""
    import pandas as pd

    from topicsent.data import Review
    from topicsent.topics import write_labelled

    path = folder / SEGMENTS_FILE
    if not path.is_file():
        return
    segments = pd.read_parquet(path)
    merged = taxonomy.merge_map()
    segments["topic"] = [merged.get(int(t), int(t)) for t in segments.topic]
    segments["topic_name"] = segments.topic.map(taxonomy.names_by_id())
    segments.to_parquet(path, index=False)
    labelled = folder / LABELLED_FILE
    if "polarity" in segments and labelled.is_file():
        try:
            records = [json.loads(line) for line in labelled.read_text(encoding="utf-8").splitlines() if line.strip()]
            reviews = [Review(id=r["id"], text=r["text"], rating=r.get("rating")) for r in records]
        except (json.JSONDecodeError, KeyError) as error:
            raise InputDataError(f"{labelled}: unreadable ({error})") from None
        write_labelled(labelled, segments, reviews)


def eval_topics(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset name(s), comma-separated.")] = (
        "womens-clothing,mams-acsa,semeval14-acsa,nsmc"
    ),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the JSON and CSV results.")] = Path("results/topics"),
    seed: Annotated[int, typer.Option(help="Seed of sampling, UMAP and LDA.")] = 0,
    format: FormatOption = TableFormat.table,
) -> None:
    """Benchmark topic models: LDA vs embedding clustering on coherence, diversity and gold alignment.

    Example:

      topicsent eval-topics -d womens-clothing,semeval14-acsa -o results/topics
    """
    from topicsent.data import DATASETS
    from topicsent.eval._topics import run_topic_benchmark
    from topicsent.interfaces._options import split_names

    names = split_names(dataset, list(DATASETS), "dataset")
    with printer(format) as shown:

        def save(run: dict) -> None:
            out.mkdir(parents=True, exist_ok=True)
            stamp = run["run"]["started"].replace(":", "").replace("-", "")[:15]
            path = out / f"topics-{stamp}-{run['run']['commit']}"
            path.with_suffix(".json").write_text(json.dumps(run, indent=2, ensure_ascii=False), encoding="utf-8")
            write_csv(_topic_rows(run["results"]), path.with_suffix(".csv"))
            latest = run["results"][-1]["dataset"]
            shown.table(topic_table([r for r in run["results"] if r["dataset"] == latest]))
            shown.line(f"Saved {path.with_suffix('.json')} and .csv")

        run_topic_benchmark(names, seed=seed, on_result=save)


def _topic_rows(results: list[dict]):
    import pandas as pd

    return pd.DataFrame(results).drop(columns=["example_keywords"])


TOPIC_COLUMNS = (
    Col("dataset", show=text, wrap=True), Col("model", show=text, wrap=True), Col("n_topics"), Col("npmi", priority=1),
    Col("c_v"), Col("diversity", priority=2), Col("outlier_share"), Col("mapped_detection_f1"), Col("nmi", priority=1),
    Col("ari", priority=2), Col("purity", priority=1), Col("seconds", priority=3),
)  # fmt: skip


def topic_table(results: list[dict], title: str = "Topic models") -> ResultTable:
    """Rows of the topic-model benchmark (``eval-topics``, benchmarks/topic_outliers.py) as a table."""
    return ResultTable(title, TOPIC_COLUMNS, results)
