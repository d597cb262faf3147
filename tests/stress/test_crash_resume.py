"""Crash and resume: `topicsent analyze` over ~71k real NSMC reviews, killed with SIGKILL
at several random moments and resumed each time, ends with exactly one row per input
review and the same predictions as an uninterrupted run."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from topicsent.data import load_dataset
from topicsent.methods import make_method
from topicsent.runs import part_files, read_manifest

pytestmark = pytest.mark.stress
KILLS = 6
ANALYZE = [sys.executable, "-m", "topicsent.interfaces", "analyze"]


def _results(run_dir) -> pd.DataFrame:
    frame = pd.concat(pd.read_parquet(p, columns=["review_id", "status", "overall_rating"]) for p in part_files(run_dir))
    return frame.sort_values("review_id").reset_index(drop=True)


def test_sigkill_at_random_points_loses_and_doubles_nothing(tmp_path):
    splits = load_dataset("nsmc")
    make_method("tfidf-lr").fit(splits.train.sample(50_000, seed=0)).save(tmp_path / "model")
    reviews = pd.DataFrame({"id": [r.id for r in splits.test], "text": [r.text for r in splits.test]})
    reviews.to_csv(tmp_path / "reviews.csv", index=False)
    assert len(reviews) >= 50_000
    model, source = str(tmp_path / "model"), str(tmp_path / "reviews.csv")
    command = [*ANALYZE, "--model", model, source, "--id-col", "id", "--chunk-size", "2000"]

    started = time.perf_counter()
    subprocess.run([*command, "-o", str(tmp_path / "whole")], check=True, capture_output=True)
    uninterrupted = time.perf_counter() - started

    rng, killed_at, parts_seen = random.Random(7), [], []
    run = [*command, "-o", str(tmp_path / "killed")]
    for attempt in range(KILLS):
        process = subprocess.Popen(run + (["--resume"] if attempt else []), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(2.0, uninterrupted)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed_at.append(round(delay, 1))
        parts_seen.append(len(part_files(tmp_path / "killed")))
    subprocess.run([*run, "--resume"], check=True, capture_output=True)

    whole, resumed = _results(tmp_path / "whole"), _results(tmp_path / "killed")
    manifest = read_manifest(tmp_path / "killed")
    lost = len(set(reviews.id) - set(resumed.review_id))
    doubled = int(resumed.review_id.duplicated().sum())
    print(
        f"\ncrash/resume: {len(reviews):,} reviews, {len(killed_at)} SIGKILLs at {killed_at} s "
        f"(parts after each: {parts_seen}), uninterrupted run {uninterrupted:.0f} s; "
        f"lost {lost}, doubled {doubled}, predictions equal: {whole.equals(resumed)}; "
        f"manifest: {manifest['reviews']:,} reviews after {len(manifest['resumed'])} resumes"
    )
    assert killed_at, "no kill landed while the run was working"
    assert lost == 0 and doubled == 0 and len(resumed) == len(reviews)
    pd.testing.assert_frame_equal(whole, resumed)
