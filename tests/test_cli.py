"""The command line as a user runs it: real processes, exit codes, no tracebacks."""

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from topicsent.interfaces._options import fmt
from topicsent.interfaces.cli import _METRIC_COLUMNS

CLI = [sys.executable, "-m", "topicsent.interfaces"]


def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {"COLUMNS": "200"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, input=stdin, env=env, timeout=600)


def test_help_teaches_with_examples():
    result = run("--help")
    assert result.returncode == 0
    for command in ("demo", "eval", "train", "predict", "datasets", "methods", "schema"):
        assert command in result.stdout
    eval_help = run("eval", "--help").stdout
    assert "--limit" in eval_help and "topicsent eval --dataset mams-acsa" in eval_help


def test_listings():
    assert "nsmc-binary" in run("datasets").stdout
    methods = run("methods").stdout
    assert "tfidf-lr" in methods and "majority" in methods
    assert "review_id" in json.loads(run("schema").stdout)["properties"]
    markdown = run("datasets", "--format", "markdown").stdout
    assert "| name | task | language | description | licence |" in markdown and "| nsmc-binary | rating | ko |" in markdown
    korean_restaurant = next(line for line in markdown.splitlines() if line.startswith("| mabsa-ko-restaurant-acsa |"))
    assert korean_restaurant.endswith("| Apache-2.0 | 1,263 | 316 | 541 |")  # reviews per split
    tsv = [line.split("\t") for line in run("methods", "--format", "tsv").stdout.splitlines()]
    assert ["name", "tasks", "description"] in tsv and any(row[0] == "tfidf-lr" for row in tsv)


def run_redirected(*args: str, out: Path) -> str:
    """The command with stdout in a file (as `> run.log`, CI or nohup) and COLUMNS=80; returns the file's text."""
    with out.open("w") as handle:
        env = os.environ | {"COLUMNS": "80"}
        result = subprocess.run([*CLI, *args], stdout=handle, stderr=subprocess.PIPE, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return out.read_text(encoding="utf-8")


def run_in_terminal(*args: str, columns: int = 80) -> str:
    """The command in a pseudo-terminal ``columns`` wide (COLUMNS set too); returns what it showed, colours removed."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(
        [*CLI, *args], stdout=follower, stderr=subprocess.DEVNULL, env=os.environ | {"COLUMNS": str(columns)}
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the command closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=600) == 0
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode().replace("\r\n", "\n"))


EVAL_ARGS = ("eval", "--dataset", "mams-acsa,nsmc", "--methods", "majority,tfidf-lr[C=0.5]", "--limit", "200", "--no-tune")


def eval_results(folder: Path) -> list[dict]:
    [path] = folder.glob("eval-*.json")
    return json.loads(path.read_text(encoding="utf-8"))["results"]


def test_eval_tables_keep_every_number_in_a_file_and_in_an_80_column_terminal(tmp_path):
    printed = run_redirected(*EVAL_ARGS, "-o", str(tmp_path / "file"), out=tmp_path / "run.log")
    results = eval_results(tmp_path / "file")
    assert "…" not in printed and results
    for result in results:  # every metric of the table, in full, and every method spec whole
        assert result["method"] in printed
        for name in _METRIC_COLUMNS[result["task"]]:
            assert fmt(result["metrics"][name]) in printed, (result["method"], name)

    shown = run_in_terminal(*EVAL_ARGS, "-o", str(tmp_path / "terminal"))
    assert "…" not in shown
    assert max(len(line) for line in shown.splitlines() if line[:1] in "┏┃┡│└") <= 80
    for result in eval_results(tmp_path / "terminal"):  # the quality metrics stay; lower-priority columns may go
        for name in _METRIC_COLUMNS[result["task"]][:4]:
            assert re.search(rf"(?<![\d.]){re.escape(fmt(result['metrics'][name]))}(?!\d)", shown), (result["method"], name)
    assert "Not shown at this width:" in shown


def test_eval_json_format_is_one_document_with_the_raw_values(tmp_path):
    result = run(*EVAL_ARGS, "--format", "json", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    tables = json.loads(result.stdout)["tables"]  # nothing else on stdout
    assert "Results:" in result.stderr
    printed = {(t["title"].split(" ")[0], row["method"]): row for t in tables for row in t["rows"]}
    for saved in eval_results(tmp_path):
        row = printed[(saved["dataset"], saved["method"])]
        assert all(row[name] == value for name, value in saved["metrics"].items() if name in row)
        assert row["train_seconds"] == saved["train_seconds"]


def test_eval_parses_each_method_spec_once_and_labels_results_with_it_as_typed(tmp_path, monkeypatch):
    """In process: the CLI parses the specs into method objects, the harness re-parses nothing."""
    from typer.testing import CliRunner

    from topicsent.interfaces.cli import app
    from topicsent.methods import _registry

    parsed = []

    class CountingSpec:  # every parse_method_spec call matches the spec pattern once, whoever imported it
        def match(self, spec):
            parsed.append(spec)
            return pattern.match(spec)

    pattern = _registry._SPEC
    monkeypatch.setattr(_registry, "_SPEC", CountingSpec())
    specs = "majority, tfidf-lr[C=4.0]"  # C=4.0 is the default: the label keeps it as typed
    result = CliRunner().invoke(app, ["eval", "-d", "mams-acsa", "-m", specs, "--limit", "150", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert parsed == ["majority", "tfidf-lr[C=4.0]"]
    [path] = tmp_path.glob("eval-*.json")
    run = json.loads(path.read_text(encoding="utf-8"))
    assert run["run"]["methods"] == ["majority", "tfidf-lr[C=4.0]"]
    assert [r["method"] for r in run["results"]] == ["majority", "tfidf-lr[C=4.0]"]
    assert run["results"][1]["params"]["C"] == 4.0 and run["results"][1]["tuning"] == []  # C fixed: nothing to tune


def test_eval_prints_tables_and_writes_results(tmp_path):
    result = run(
        "eval",
        "--dataset",
        "mams-acsa,nsmc-binary",
        "--methods",
        "majority,tfidf-lr",
        "--limit",
        "200",
        "--no-tune",
        "-o",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "mams-acsa (test: 200 reviews" in result.stdout and "nsmc-binary" in result.stdout
    assert "tfidf-lr" in result.stdout and "polarity_accuracy" in result.stdout
    assert len(list(tmp_path.glob("eval-*.json"))) == 1 and len(list(tmp_path.glob("eval-*.csv"))) == 1


@pytest.mark.parametrize(
    ("method", "params"),
    [("tfidf-lr", "{}"), ("finetune", '{"epochs": 4, "learning_rate": 0.0003, "max_length": 32, "patience": 4}')],
)
def test_train_then_predict_a_user_file(tmp_path, method, params):
    train_file = tmp_path / "train.csv"
    lines = ["id,review,stars"] + [
        f"{i},{'great lovely perfect' if i % 2 else 'awful broken bad'} item {i},{5 if i % 2 else 1}" for i in range(60)
    ]
    train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    trained = run(
        "train", str(train_file), "--text-col", "review", "--id-col", "id", "--rating-col", "stars",
        "--method", method, "--params", params, "-o", str(tmp_path / "model"),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    reviews = tmp_path / "new.jsonl"
    reviews.write_text('{"review": "perfect and lovely"}\n{"review": "   "}\n{"review": "broken, awful"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    predicted = run("predict", "--model", str(tmp_path / "model"), str(reviews), "--text-col", "review", "-o", str(out))
    assert predicted.returncode == 0, predicted.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert rows[0]["overall"]["rating"] == 5 and rows[2]["overall"]["rating"] == 1


def test_predict_reads_stdin(tmp_path):
    trained = run("train", "--dataset", "mams-acsa", "--params", '{"C": 1.0}', "-o", str(tmp_path / "m"))
    assert trained.returncode == 0, trained.stderr
    assert "Confidence calibrated on" in trained.stdout and (tmp_path / "m" / "calibration.json").is_file()
    reviews = '{"text": "The food was cold but the waiter was lovely."}\n{"text": "Great food."}\n'
    result = run("predict", "--model", str(tmp_path / "m"), "-", "-o", str(tmp_path / "o.csv"), stdin=reviews)
    assert result.returncode == 0, result.stderr
    assert "food" in (tmp_path / "o.csv").read_text()
    picky = run("predict", "--model", str(tmp_path / "m"), "-", "--abstain-below", "0.999", "-o", str(tmp_path / "a.jsonl"),
                stdin=reviews)  # fmt: skip
    assert picky.returncode == 0 and "abstained" in picky.stdout
    assert json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])["status"] == "abstained"


def test_sentences_of_a_command_without_a_table_keep_a_path_whole_in_a_log_file(tmp_path):
    """train's sentences (saved, calibrated) go through the one printing helper: with
    stdout in a file and COLUMNS=80 a long path stays on its line."""
    out = tmp_path / ("a-folder-name-long-enough-to-pass-eighty-columns-" * 2) / "model"
    printed = run_redirected("train", "--dataset", "mams-acsa", "--params", '{"C": 1.0}', "-o", str(out),
                             out=tmp_path / "train.log")  # fmt: skip
    assert f"reviews; saved to {out}\n" in printed
    assert "Confidence calibrated on" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--dataset", "imdb"], "unknown dataset imdb"),
        (["eval", "--methods", "bert"], "unknown method 'bert'"),
        (["eval", "--methods", "tfidf-lr[depth=3]"], "has no parameter(s) depth"),
        (["predict", "--model", "/nonexistent", "x.csv"], "not a saved topicsent model"),
        (["predict", "--model", "/nonexistent", "x.csv", "-o", "out.xlsx"], "unknown output type"),
        (["train", "-o", "m"], "give either a labelled file or --dataset"),
        (["train", "--dataset", "mams-acsa", "--params", "{bad", "-o", "m"], "--params is not valid JSON"),
        (["train", "--dataset", "mams-acsa", "--params", '{"C": -1}', "-o", "m"], "must be a finite float > 0"),
        (["train", "--dataset", "mams-acsa", "--params", '{"depth": 3}', "-o", "m"], "has no parameter(s) depth"),
        (["train", "--dataset", "mams-acsa", "--base", "smollm2-135m-instruct", "-o", "m"], "has no parameter(s) base"),
        (["train", "-d", "mams-acsa", "-m", "sft", "--base", "/nowhere/x.gguf", "-o", "m"], "/nowhere/x.gguf does not exist"),
        (["topics", "x.csv", "--outlier-threshold", "often"], "--outlier-threshold must be 'auto', 'none' or a number"),
        (["topics", "x.csv", "--outlier-threshold", "1.5"], "outlier_threshold is a cosine similarity, in [-1, 1]; got 1.5"),
        (["topics", "x.csv", "--outlier-threshold", "0.5", "--outlier-share", "0.1"], "not both"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(tmp_path, args, message):
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_bad_file_error_names_file_and_row(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text,stars\nfine,5\n\xff\xfe,3\n")
    result = run("train", str(bad), "--rating-col", "stars", "-o", str(tmp_path / "m"))
    assert result.returncode == 2 and f"{bad}: line 3: not valid UTF-8" in result.stderr


def test_demo_runs_on_bundled_data(tmp_path):
    result = run("demo", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "food" in result.stdout and "staff" in result.stdout and "polarity accuracy" in result.stdout
    assert (tmp_path / "mams_acsa_analysis.jsonl").is_file() and (tmp_path / "nsmc_ratings.parquet").is_file()
    assert str(tmp_path / "mams_acsa_analysis.jsonl") in result.stdout.replace("\n", "")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count('<section class="run"') == 2 and 'data-chart="Sentiment by aspect"' in html


def _bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files every reader must refuse the same way: (file, expected words)."""
    good = b"text,stars\n" + b"great food,5\nslow service,2\n" * 50
    truncated = folder / "truncated.csv.gz"
    truncated.write_bytes(gzip.compress(good)[:-20])
    latin1 = folder / "latin1.csv"
    latin1.write_bytes(good + "caf\xe9 ok,4\n".encode("latin-1"))
    return {"truncated gzip": (truncated, "not a readable gzip file"), "latin-1 byte": (latin1, "line 102: not valid UTF-8")}


@pytest.mark.parametrize("problem", ["truncated gzip", "latin-1 byte"])
def test_every_command_reads_input_through_one_reader_with_one_message(korean_run_input, tmp_path, problem):
    model, _, _ = korean_run_input
    path, expected = _bad_inputs(tmp_path)[problem]
    commands = {
        "analyze": ["analyze", "--model", str(model), str(path), "-o", str(tmp_path / "run")],
        "predict": ["predict", "--model", str(model), str(path), "-o", str(tmp_path / "out.jsonl")],
        "train": ["train", str(path), "--rating-col", "stars", "-o", str(tmp_path / "m")],
        "topics": ["topics", str(path), "-o", str(tmp_path / "topics")],
    }
    for name, args in commands.items():
        result = run(*args)
        assert result.returncode == 2, (name, result.stderr[-800:])
        assert result.stderr.strip().splitlines() == [result.stderr.strip()] and expected in result.stderr, (name, result.stderr)


def test_a_lone_surrogate_is_that_rows_error_never_the_batch(korean_run_input, tmp_path):
    model, _, _ = korean_run_input
    reviews = tmp_path / "reviews.jsonl"
    lines = ['{"id": "a", "text": "좋아요 최고"}', '{"id": "b", "text": "good \\ud800 bad"}', '{"id": "c", "text": "별로"}']
    reviews.write_text("\n".join(lines) + "\n", encoding="utf-8")
    analyzed = run("analyze", "--model", str(model), str(reviews), "--id-col", "id", "-o", str(tmp_path / "run"))
    assert analyzed.returncode == 0, analyzed.stderr
    rows = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "run" / "parts").glob("*.parquet"))).set_index("review_id")
    assert list(rows["status"]) == ["ok", "error", "ok"] and "lone surrogate" in rows.loc["b", "status_reason"]
    assert rows.loc["b", "text"] == "good \ufffd bad"  # stored, with the half pair replaced
    predicted = run("predict", "--model", str(model), str(reviews), "--id-col", "id", "-o", str(tmp_path / "out.jsonl"))
    assert predicted.returncode == 0 and "1 error" in predicted.stdout, predicted.stderr
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text('{"text": "fine", "stars": 5}\n{"text": "x \\udfff", "stars": 1}\n', encoding="utf-8")
    trained = run("train", str(labelled), "--rating-col", "stars", "-o", str(tmp_path / "m"))
    assert trained.returncode == 2 and "row 2: text holds a lone surrogate" in trained.stderr, trained.stderr


def test_an_error_line_keeps_its_brackets(tmp_path):
    """The error line is printed as text, not console markup: a user's column name in
    brackets and the extra to install (``topicsent[encoders]``) reach the user intact."""
    data = tmp_path / "reviews.csv"
    data.write_text("text,stars\ngood,5\nbad,1\n", encoding="utf-8")
    command = ["train", str(data), "--rating-col", "[bold]stars", "-o", str(tmp_path / "m")]
    done = subprocess.run([sys.executable, "-m", "topicsent.interfaces", *command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no column '[bold]stars'" in done.stderr and len(done.stderr.strip().splitlines()) == 1
