"""REST under load: 50 concurrent clients for 60 s against `topicsent serve` (a real
process on 127.0.0.1, a tfidf-lr model trained on real MAMS sentences) posting batches
of real reviews. Figures: requests/s, p50/p99 latency, errors, the server's peak
memory; the bearer token never appears in the server's log."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from conftest import free_port, wait_until_serving
from topicsent.methods import make_method

pytestmark = pytest.mark.stress
CLIENTS, SECONDS, BATCH = 50, 60, 5
TOKEN = "load-test-token-4f9a"
MEMORY_BOUND_MB = 1_000


async def _client(url: str, reviews: list[dict], deadline: float, latencies: list[float], errors: list[str]) -> None:
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        i = 0
        while time.monotonic() < deadline:
            batch = reviews[i % len(reviews) : i % len(reviews) + BATCH] or reviews[:BATCH]
            started = time.perf_counter()
            try:
                response = await client.post(f"{url}/v1/analyze", json={"reviews": batch})
                if response.status_code != 200:
                    errors.append(str(response.status_code))
            except httpx.HTTPError as error:
                errors.append(type(error).__name__)
            latencies.append(time.perf_counter() - started)
            i += BATCH


def test_fifty_clients_for_a_minute(task_data, tmp_path):
    train, test = task_data["acsa"]
    make_method("tfidf-lr").fit(train).save(tmp_path / "model")
    reviews = [{"id": r.id, "text": r.text} for r in test]
    port, log = free_port(), tmp_path / "server.log"
    command = [sys.executable, "-m", "topicsent.interfaces", "serve", "--model", str(tmp_path / "model"),
               "--port", str(port), "--jobs-dir", str(tmp_path / "jobs")]  # fmt: skip
    with log.open("w") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=os.environ | {"TOPICSENT_API_TOKEN": TOKEN})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/healthz", server, log)
        assert httpx.get(f"{url}/v1/models").status_code == 401
        assert httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer nope"}).status_code == 401

        latencies: list[float] = []
        errors: list[str] = []
        peak = [0.0]

        async def run() -> None:
            deadline = time.monotonic() + SECONDS
            process = psutil.Process(server.pid)

            async def watch_memory() -> None:
                while time.monotonic() < deadline:
                    peak[0] = max(peak[0], process.memory_info().rss / 2**20)
                    await asyncio.sleep(0.5)

            await asyncio.gather(watch_memory(), *(_client(url, reviews, deadline, latencies, errors) for _ in range(CLIENTS)))

        asyncio.run(run())
    finally:
        server.terminate()
        server.wait(timeout=20)
    ordered = sorted(latencies)
    p50, p99 = statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]
    print(
        f"\nREST load: {CLIENTS} clients x {SECONDS} s, {BATCH} reviews per request: {len(latencies):,} requests, "
        f"{len(latencies) / SECONDS:.0f} requests/s ({BATCH * len(latencies) / SECONDS:.0f} reviews/s), "
        f"p50 {1000 * p50:.0f} ms, p99 {1000 * p99:.0f} ms, errors {len(errors)}, server peak RSS {peak[0]:.0f} MB"
    )
    assert not errors, errors[:5]
    assert peak[0] < MEMORY_BOUND_MB
    assert TOKEN not in log.read_text(), "the token was logged"
