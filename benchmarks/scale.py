"""Scale benchmark: analyse every NSMC review (~712k) with the fastest good method.

Trains tfidf-lr (rating) on a seeded 100k sample of NSMC's train split once (the full
570k takes over 10 minutes to fit here and the benchmark is about analysis), then runs ``topicsent analyze``
over the whole shared file with each engine, as a user would, and reports wall time,
reviews/s and the peak resident memory of the whole process tree (Ray's workers
included, sampled every 0.2 s). The ``local-killed`` row interrupts a local run with
SIGKILL part-way, resumes it with ``--resume`` and checks that the result has exactly
one row per input review. Prints a table; writes JSON and CSV with the commit.

    python benchmarks/scale.py --out results/bench-scale
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import psutil

from topicsent.data import data_dir, load_dataset
from topicsent.eval import git_commit
from topicsent.methods import make_method
from topicsent.runs import part_files, read_manifest

ANALYZE = [sys.executable, "-m", "topicsent.interfaces", "analyze"]
TRAIN_SAMPLE = 100_000
COLUMNS = ["--id-col", "review_id", "--rating-col", "rating", "--text-col", "text"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=data_dir() / "nsmc" / "nsmc_ratings.tsv.gz")
    parser.add_argument("--out", type=Path, default=Path("results/bench-scale"))
    parser.add_argument("--engines", default="local,ray,local-killed")
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--kill-after", type=float, default=60.0, help="seconds into the killed run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = _model(args.out / "model")
    rows = [_run(engine, model, args) for engine in args.engines.split(",")]
    _report(rows, args.out)


def _model(folder: Path) -> Path:
    if not (folder / "topicsent.json").is_file():
        started = time.perf_counter()
        make_method("tfidf-lr").fit(load_dataset("nsmc").train.sample(TRAIN_SAMPLE, seed=0)).save(folder)
        print(f"trained tfidf-lr on {TRAIN_SAMPLE:,} NSMC train reviews in {time.perf_counter() - started:.0f} s")
    return folder


def _run(engine: str, model: Path, args) -> dict:
    out = args.out / f"run-{engine}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    command = [*ANALYZE, "--model", str(model), str(args.input), *COLUMNS, "-o", str(out), "--chunk-size", str(args.chunk_size)]
    started = time.perf_counter()
    if engine == "local-killed":
        peak, _ = _watch(command, kill_after=args.kill_after)
        killed_parts = len(part_files(out))
        peak_resumed, code = _watch([*command, "--resume"])
        peak = max(peak, peak_resumed)
    else:
        killed_parts = None
        peak, code = _watch([*command, "--engine", "ray"] if engine == "ray" else command)
    seconds = time.perf_counter() - started
    manifest = read_manifest(out)
    ids = pd.concat(pd.read_parquet(p, columns=["review_id"]) for p in part_files(out)).review_id
    return {
        "engine": engine, "exit_code": code, "reviews": manifest["reviews"], "seconds": round(seconds, 1),
        "reviews_per_second": round(manifest["reviews"] / seconds), "peak_rss_mb": round(peak),
        "distinct_ids": int(ids.nunique()), "duplicated_rows": int(ids.duplicated().sum()),
        "parts_before_kill": killed_parts, "statuses": manifest["statuses"],
    }  # fmt: skip


def _watch(command: list[str], kill_after: float | None = None) -> tuple[float, int]:
    """Run a command; the peak summed RSS (MB) of it and its descendants, and its exit code."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    parent, peak, started = psutil.Process(process.pid), 0.0, time.perf_counter()
    while process.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20)
        except psutil.Error:
            pass
        if kill_after is not None and time.perf_counter() - started > kill_after:
            for member in [*parent.children(recursive=True), parent]:
                member.send_signal(signal.SIGKILL)
            process.wait()
            break
        time.sleep(0.2)
    return peak, process.returncode


def _report(rows: list[dict], out: Path) -> None:
    commit, stamp = git_commit(), datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    local = next((r for r in rows if r["engine"] == "local"), None)
    print(f"\n{'engine':<14}{'reviews':>10}{'seconds':>10}{'reviews/s':>11}{'vs local':>10}{'peak MB':>9}{'dup rows':>10}")
    for row in rows:
        row["speed_vs_local"] = round(row["reviews_per_second"] / local["reviews_per_second"], 2) if local else None
        print(
            f"{row['engine']:<14}{row['reviews']:>10,}{row['seconds']:>10}{row['reviews_per_second']:>11,}"
            f"{row['speed_vs_local'] or '-':>10}{row['peak_rss_mb']:>9,}{row['duplicated_rows']:>10}"
        )
    stem = out / f"scale-{stamp}-{commit}"
    stem.with_suffix(".json").write_text(json.dumps({"commit": commit, "results": rows}, indent=2))
    with stem.with_suffix(".csv").open("w", newline="") as table:
        writer = csv.DictWriter(table, fieldnames=["commit", *rows[0]])
        writer.writeheader()
        writer.writerows({"commit": commit, **row} for row in rows)
    print(f"Results: {stem}.json and .csv")


if __name__ == "__main__":
    main()
