"""End to end against a real model: llama.cpp's OpenAI-compatible server on 127.0.0.1
serving the packaged SmolLM2-135M-Instruct, reached over HTTP by the `openai` backend.

SmolLM2 is tiny, so these tests check behaviour (valid rows or honest `unparsed`
ones, cache, fallbacks, the call log), not accuracy; the benchmark measures accuracy
with the Qwen models.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from conftest import SERVED_MODEL, free_port  # what the llama_server fixture serves
from topicsent.interfaces.cli import app
from topicsent.llm import ChatRequest, OpenAIBackend
from topicsent.methods import make_method


@pytest.fixture
def llm_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPICSENT_LLM_CACHE", str(tmp_path / "llm.sqlite"))
    return tmp_path / "llm.sqlite"


def test_backend_falls_back_to_the_schema_form_this_server_takes(llama_server):
    backend = OpenAIBackend(SERVED_MODEL, base_url=llama_server)
    schema = {"type": "object", "properties": {"rating": {"type": "integer", "enum": [1, 2, 3]}}, "required": ["rating"]}
    request = ChatRequest.of([{"role": "user", "content": "Rate great food, 1 to 3, as JSON."}], schema=schema, max_tokens=20)

    async def run():
        try:
            return await backend.complete(request)
        finally:
            await backend.aclose()

    completion = asyncio.run(run())
    assert json.loads(completion.text)["rating"] in (1, 2, 3)  # constrained by the schema
    assert backend.schema_mode == "json_object" and completion.input_tokens > 0 and completion.output_tokens > 0


def test_llm_method_over_http_with_cache_and_log(llama_server, task_data, llm_cache):
    train, test = task_data["acsa"]
    test = test.with_reviews(list(test)[:5])
    params = {"backend": "openai", "base_url": llama_server, "model": SERVED_MODEL, "max_tokens": 160}
    method = make_method("llm", **params).fit(train)
    analyses = method.predict(test.text_only())
    assert [a.review_id for a in analyses] == [r.id for r in test]
    assert {a.status for a in analyses} <= {"ok", "unparsed"} and any(a.status == "ok" for a in analyses)
    categories = set(train.label_space.categories)
    for analysis in analyses:
        if analysis.status == "ok":
            assert {a.aspect for a in analysis.aspects} <= categories
            assert all(a.polarity in train.label_space.polarities for a in analysis.aspects)
            assert analysis.usage.input_tokens > 0 and analysis.usage.cache_hit is False
        else:  # never a guessed label: no aspects, the raw answer kept
            assert not analysis.aspects and analysis.raw is not None
    assert method.run_report()["calls"] >= len(test) and method.run_report()["cost_usd"] == 0.0

    again = make_method("llm", **params).fit(train)
    second = again.predict(test.text_only())
    assert again.run_report()["calls"] == 0, "an identical second run must be answered from the cache"
    assert [a.model_dump(exclude={"usage"}) for a in second] == [a.model_dump(exclude={"usage"}) for a in analyses]

    result = CliRunner().invoke(app, ["llm", "log", "--json"])
    assert result.exit_code == 0, result.output
    [totals] = json.loads(result.output)
    assert totals["backend"] == "openai" and totals["cache_hits"] >= len(test)
    assert totals["calls"] == method.run_report()["calls"] + totals["cache_hits"]


def test_server_outage_gives_error_rows_not_a_crash(task_data, llm_cache):
    train, test = task_data["rating"]
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens here
    method = make_method("llm", backend="openai", base_url=dead, model=SERVED_MODEL, max_retries=1).fit(train)
    analyses = method.predict(test.text_only()[:3])
    assert [a.status for a in analyses] == ["error"] * 3
    assert all("connection failed" in a.status_reason and a.overall.rating is None for a in analyses)
    assert method.run_report()["retries"] == 3
