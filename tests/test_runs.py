"""Resumable runs: chunked analysis into Parquet parts, resume after a crash, DuckDB export."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from topicsent.errors import InvalidParameterError, TopicsentError
from topicsent.runs import RunRequest, analyze_to_run, export_run, part_files, read_manifest
from topicsent.runs import _run as run_module

VOLATILE = ["latency_ms", "cache_hit"]


def _results(run_dir):
    return pd.concat(pd.read_parquet(p) for p in part_files(run_dir)).drop(columns=VOLATILE).reset_index(drop=True)


def test_an_interrupted_run_resumes_to_the_same_results_without_duplicates(korean_run_input, tmp_path, monkeypatch):
    model, reviews, n_reviews = korean_run_input
    whole = analyze_to_run(RunRequest(model, str(reviews), tmp_path / "whole", chunk_size=40))
    assert whole["status"] == "finished" and whole["reviews"] == n_reviews
    assert whole["statuses"] == {"ok": n_reviews - 1, "error": 1} and whole["method"] == "tfidf-lr"

    write_part, written = run_module._write_part, []

    def crash_on_third_part(part, *args):
        if len(written) == 2:
            raise KeyboardInterrupt  # as Ctrl-C or a kill between two chunks
        written.append(part)
        write_part(part, *args)

    monkeypatch.setattr(run_module, "_write_part", crash_on_third_part)
    request = RunRequest(model, str(reviews), tmp_path / "resumed", chunk_size=40)
    with pytest.raises(KeyboardInterrupt):
        analyze_to_run(request)
    assert len(part_files(request.out)) == 2 and read_manifest(request.out)["status"] == "running"
    monkeypatch.setattr(run_module, "_write_part", write_part)
    with pytest.raises(InvalidParameterError, match="add --resume"):
        analyze_to_run(request)
    resumed = analyze_to_run(request, resume=True)
    assert resumed["reviews"] == n_reviews and len(resumed["resumed"]) == 1
    assert not list(request.out.rglob("*.tmp"))
    pd.testing.assert_frame_equal(_results(request.out), _results(tmp_path / "whole"))
    assert _results(request.out).drop_duplicates("review_id").shape[0] == n_reviews


def test_resume_refuses_a_different_chunking_or_input(korean_run_input, tmp_path):
    model, reviews, _ = korean_run_input
    analyze_to_run(RunRequest(model, str(reviews), tmp_path / "run", chunk_size=100))
    with pytest.raises(InvalidParameterError, match="chunk_size differ"):
        analyze_to_run(RunRequest(model, str(reviews), tmp_path / "run", chunk_size=50), resume=True)
    other = tmp_path / "other.csv"
    other.write_text("text\n좋아요\n", encoding="utf-8")
    with pytest.raises(InvalidParameterError, match="input differ"):
        analyze_to_run(RunRequest(model, str(other), tmp_path / "run", chunk_size=100), resume=True)
    with pytest.raises(InvalidParameterError, match="abstain_below differ"):
        analyze_to_run(RunRequest(model, str(reviews), tmp_path / "run", chunk_size=100, abstain_below=0.6), resume=True)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "not-a-run" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidParameterError, match="not a topicsent run folder"):
        analyze_to_run(RunRequest(model, str(reviews), tmp_path / "not-a-run"))


def test_a_run_can_abstain_on_unsure_reviews(korean_run_input, tmp_path):
    model, reviews, n_reviews = korean_run_input
    manifest = analyze_to_run(RunRequest(model, str(reviews), tmp_path / "run", chunk_size=100, abstain_below=0.5))
    assert manifest["abstain_below"] == 0.5 and manifest["reviews"] == n_reviews
    assert 0 < manifest["statuses"]["abstained"] < n_reviews - 1
    rows = _results(tmp_path / "run")
    assert rows.loc[rows.status == "abstained", "overall_rating"].isna().all()
    assert (rows.loc[rows.status == "ok", "overall_confidence"] >= 0.5).all()


def test_runs_export_to_duckdb_for_plain_sql(korean_run_input, tmp_path):
    import duckdb

    model, reviews, n_reviews = korean_run_input
    run_dir = tmp_path / "nsmc ratings"
    analyze_to_run(RunRequest(model, str(reviews), run_dir, chunk_size=64))
    database = tmp_path / "results.duckdb"
    assert export_run(run_dir, database) == "run_nsmc_ratings"
    export_run(run_dir, database)  # again: replaced, not duplicated
    with duckdb.connect(str(database), read_only=True) as sql:
        assert sql.execute("SELECT count(DISTINCT review_id), count(*) FROM run_nsmc_ratings").fetchone() == (n_reviews,) * 2
        method, params, reviews_count = sql.execute("SELECT method, params, reviews FROM runs").fetchone()
        ratings = sql.execute("SELECT min(overall_rating), max(overall_rating) FROM run_nsmc_ratings").fetchone()
    assert (method, reviews_count) == ("tfidf-lr", n_reviews) and json.loads(params)["C"] > 0
    assert 1 <= ratings[0] < ratings[1] <= 10


@pytest.mark.slow  # starting Ray takes most of its ~2 minutes; make test-slow runs it
def test_the_ray_engine_writes_the_same_run_as_the_local_one(korean_run_input, tmp_path):
    import ray

    from topicsent.data import ColumnMap
    from topicsent.runs import analyze_with_ray

    model, reviews, n_reviews = korean_run_input
    columns = ColumnMap(text="text", id="id", rating="stars")
    with pytest.raises(InvalidParameterError, match="needs --id-col"):
        analyze_with_ray(RunRequest(model, str(reviews), tmp_path / "no-ids"))
    local = analyze_to_run(RunRequest(model, str(reviews), tmp_path / "local", columns=columns, chunk_size=64))
    try:
        on_ray = analyze_with_ray(RunRequest(model, str(reviews), tmp_path / "ray", columns=columns, chunk_size=64), workers=2)
    finally:
        ray.shutdown()
    assert on_ray["engine"] == "ray" and on_ray["reviews"] == local["reviews"] == n_reviews
    assert on_ray["statuses"] == local["statuses"]
    by_id = [_results(tmp_path / name).sort_values("review_id").reset_index(drop=True) for name in ("local", "ray")]
    pd.testing.assert_frame_equal(*by_id)


def test_resume_refuses_a_model_retrained_in_place(korean_run_input, tmp_path):
    """Same topicsent.json, other weights (or another calibration): another model."""
    from topicsent.data import load_dataset
    from topicsent.methods import BaseMethod, make_method

    model, reviews, _ = korean_run_input
    folder = shutil.copytree(model, tmp_path / "model")
    request = RunRequest(folder, str(reviews), tmp_path / "run", chunk_size=40)
    analyze_to_run(request)
    config = (folder / "topicsent.json").read_bytes()
    make_method("tfidf-lr").fit(load_dataset("nsmc").train.sample(800, seed=7)).save(folder)
    assert (folder / "topicsent.json").read_bytes() == config  # what the old fingerprint covered is unchanged
    with pytest.raises(InvalidParameterError, match="model differ"):
        analyze_to_run(request, resume=True)
    shutil.rmtree(folder)
    shutil.copytree(model, folder)
    assert analyze_to_run(request, resume=True)["status"] == "finished"  # the very same files: accepted
    (folder / "calibration.json").write_text(json.dumps({"knots": [0.0, 1.0], "values": [0.3, 0.9]}), encoding="utf-8")
    assert BaseMethod.load(folder).calibrator_  # a calibration alone changes the confidences: another model
    with pytest.raises(InvalidParameterError, match="model differ"):
        analyze_to_run(request, resume=True)


def _hold_lock(folder) -> subprocess.Popen:
    """Another process holding the run folder's lock until it is killed."""
    code = "import sys, time; from pathlib import Path; from topicsent._folders import folder_lock\n" \
        "with folder_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)"  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_process_on_a_run_folder_is_refused_and_a_killed_ones_lock_is_taken_over(korean_run_input, tmp_path):
    model, reviews, n_reviews = korean_run_input
    out = tmp_path / "run"
    holder = _hold_lock(out)
    try:
        command = [sys.executable, "-m", "topicsent.interfaces", "analyze", "--model", str(model), str(reviews), "-o", str(out)]
        refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2 and f"pid {holder.pid}" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1 and "in use" in refused.stderr
        assert not (out / "parts").exists()  # the refused process wrote nothing
    finally:
        holder.kill()  # as kill -9: the lock file stays behind
        holder.wait()
    assert (out / ".lock").is_file()
    assert analyze_to_run(RunRequest(model, str(reviews), out, chunk_size=64))["reviews"] == n_reviews


def test_a_full_disk_is_one_line_and_the_run_resumes_once_there_is_room(korean_run_input, tmp_path):
    """/dev/full answers every write with ENOSPC, as a full disk does."""
    model, reviews, n_reviews = korean_run_input
    out = tmp_path / "run"
    (out / "parts").mkdir(parents=True)
    (out / "parts" / "part-000001.tmp").symlink_to("/dev/full")  # the second chunk meets a full disk
    command = [sys.executable, "-m", "topicsent.interfaces", "analyze", "--model", str(model), str(reviews),
               "-o", str(out), "--chunk-size", "64"]  # fmt: skip
    full = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert full.returncode == 2 and len(full.stderr.strip().splitlines()) == 1, full.stderr
    assert str(out) in full.stderr and "No space left on device" in full.stderr and "--resume" in full.stderr
    assert len(part_files(out)) == 1 and not (out / "parts" / "part-000001.tmp").exists()  # no half part left
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert read_manifest(out)["reviews"] == n_reviews


def test_a_run_that_could_not_write_its_manifest_can_start_again(korean_run_input, tmp_path):
    model, reviews, n_reviews = korean_run_input
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json.tmp").symlink_to("/dev/full")  # the very first write fails
    with pytest.raises(TopicsentError, match="No space left on device"):
        analyze_to_run(RunRequest(model, str(reviews), out, chunk_size=64))
    (out / "run.json.tmp").unlink()  # room again
    assert analyze_to_run(RunRequest(model, str(reviews), out, chunk_size=64))["reviews"] == n_reviews  # no --resume needed


def test_duckdb_refuses_a_table_name_another_run_holds(korean_run_input, tmp_path):
    import duckdb

    model, reviews, n_reviews = korean_run_input
    database = tmp_path / "results.duckdb"
    for name in ("nsmc-a", "nsmc_a"):
        analyze_to_run(RunRequest(model, str(reviews), tmp_path / name, chunk_size=100))
    assert export_run(tmp_path / "nsmc-a", database) == "run_nsmc_a"
    with pytest.raises(InvalidParameterError, match="table run_nsmc_a already holds run 'nsmc-a'"):
        export_run(tmp_path / "nsmc_a", database)
    with duckdb.connect(str(database)) as sql:
        assert sql.execute("SELECT run_id, run_dir FROM runs").fetchall() == [("nsmc-a", str((tmp_path / "nsmc-a").resolve()))]
        assert sql.execute("SELECT count(DISTINCT review_id) FROM run_nsmc_a").fetchone() == (n_reviews,)
        sql.execute("CREATE TABLE run_mine AS SELECT 1 AS x")  # the analyst's own table
    analyze_to_run(RunRequest(model, str(reviews), tmp_path / "mine", chunk_size=100))
    with pytest.raises(InvalidParameterError, match="not a topicsent run"):
        export_run(tmp_path / "mine", database)
    assert export_run(tmp_path / "nsmc-a", database) == "run_nsmc_a"  # its own table: replaced as before
