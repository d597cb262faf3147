"""`sft-data --format openai`: the chat JSONL OpenAI's fine-tuning API takes, and the tuned
model used back through the `openai` backend with the prompts it was tuned on.

The shape checked is the documented one (OpenAI fine-tuning guide, "chat" format, and
the checks of the OpenAI Cookbook's "Data preparation and analysis for chat model
fine-tuning"): one JSON object per line holding only ``messages``; each message has a
``role`` of system/user/assistant and non-empty string ``content`` and no other keys;
a system message only first; user and assistant turns alternate; the last turn is the
assistant's; at least 10 examples per file.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from topicsent.data import ColumnMap, read_reviews
from topicsent.interfaces.cli import app
from topicsent.llm import model_price
from topicsent.methods import make_method
from topicsent.schema import Task

CASES = Path(__file__).parents[2] / "shared" / "cases"
TUNED = "ft:gpt-4o-mini-2024-07-18:acme::9xyzAbC1"  # how OpenAI names a fine-tuned model
MESSAGE_KEYS = {"role", "content"}


def openai_format_problems(lines: list[str]) -> list[str]:
    """Every departure from OpenAI's documented chat fine-tuning format, one per problem."""
    problems = []
    if len(lines) < 10:
        problems.append(f"{len(lines)} examples; OpenAI needs at least 10")
    for number, line in enumerate(lines, start=1):
        example = json.loads(line)
        if not isinstance(example, dict) or set(example) != {"messages"}:
            problems.append(f"line {number}: top-level keys {sorted(example)} are not just 'messages'")
            continue
        messages = example["messages"]
        roles = [m.get("role") for m in messages]
        for message in messages:
            if set(message) != MESSAGE_KEYS:
                problems.append(f"line {number}: message keys {sorted(message)}")
            if message.get("role") not in ("system", "user", "assistant"):
                problems.append(f"line {number}: role {message.get('role')!r}")
            if not isinstance(message.get("content"), str) or not message["content"].strip():
                problems.append(f"line {number}: empty or non-text content")
        turns = roles[1:] if roles[:1] == ["system"] else roles
        if "system" in turns or not turns or turns[0] != "user" or turns[-1] != "assistant":
            problems.append(f"line {number}: roles {roles}")
        if any(a == b for a, b in itertools.pairwise(turns)):
            problems.append(f"line {number}: user and assistant do not alternate: {roles}")
    return problems


@pytest.fixture(scope="module")
def openai_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sft") / "openai.jsonl"
    result = CliRunner().invoke(
        app, ["sft-data", str(CASES / "base_acsa.csv"), "--id-col", "id", "--aspects-col", "aspects", "--format", "openai",
              "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_the_openai_file_has_the_documented_shape(openai_file):
    lines = openai_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 120  # 60 reviews x (detect, given)
    assert openai_format_problems(lines) == []
    assert openai_format_problems(['{"messages": [{"role": "user", "content": "x"}], "review_id": "1"}']) != []  # the check bites


def test_the_default_format_keeps_what_the_sft_method_reads(tmp_path):
    out = tmp_path / "topicsent.jsonl"
    result = CliRunner().invoke(
        app, ["sft-data", str(CASES / "base_acsa.csv"), "--id-col", "id", "--aspects-col", "aspects", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert {"messages", "review_id", "form", "prompt_hash"} <= set(first)
    assert openai_format_problems(out.read_text(encoding="utf-8").splitlines()) != []  # not for OpenAI as it is


def test_an_unknown_format_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["sft-data", str(CASES / "base_acsa.csv"), "--aspects-col", "aspects", "--format", "gemini",
                                      "-o", str(tmp_path / "x.jsonl")])  # fmt: skip
    assert "unknown format gemini" in str(result.exception) and not (tmp_path / "x.jsonl").exists()


def test_the_tuned_model_answers_through_the_openai_backend_with_the_prompts_it_learned(openai_file, monkeypatch, tmp_path):
    """A stand-in for the fine-tuned model answers exactly the prompts of the training file
    (what tuning teaches); the `llm` method set up as the docs say must send those same
    prompts, so every review is answered and scored right, and the call is priced as a
    fine-tuned model."""
    learned = {}
    for line in openai_file.read_text(encoding="utf-8").splitlines():
        *prompt, answer = json.loads(line)["messages"]
        learned[json.dumps(prompt, ensure_ascii=False)] = answer["content"]
    seen = []

    def tuned_model(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body["model"])
        content = learned.get(json.dumps(body["messages"], ensure_ascii=False), "I was not tuned on this prompt")
        usage = {"prompt_tokens": 300, "completion_tokens": 20}
        return httpx.Response(200, json={"choices": [{"message": {"content": content}}], "usage": usage})

    client = httpx.AsyncClient(base_url="https://api.openai.com/v1", transport=httpx.MockTransport(tuned_model))
    monkeypatch.setattr("topicsent.llm._openai.OpenAIBackend._http", lambda self: client)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("TOPICSENT_CACHE_DIR", str(tmp_path / "cache"))

    reviews = read_reviews(CASES / "base_acsa.csv", ColumnMap(id="id", aspects="aspects"), task=Task.ACSA)
    model = make_method("llm", backend="openai", model=TUNED, evidence=False).fit(reviews)
    sample = reviews[:6]
    found = model.predict(sample.text_only())  # the "detect" form
    rated = model.predict(sample.unlabelled(), given_aspects=True)  # the "given" form
    for analyses in (found, rated):
        assert [a.status for a in analyses] == ["ok"] * 6
        assert [[(x.aspect, x.polarity) for x in a.aspects] for a in analyses] == [
            [(x.name, x.polarity) for x in r.aspects] for r in sample
        ]
    assert set(seen) == {TUNED} and len(seen) == 12
    assert found[0].usage.cost_usd == pytest.approx((300 * 0.30 + 20 * 1.20) / 1e6)


def test_fine_tuned_openai_models_have_their_own_price():
    assert model_price(TUNED, local=False) == (0.30, 1.20)
    assert model_price("ft:gpt-4.1-mini-2025-04-14:acme::x", local=False) == (0.80, 3.20)
    assert model_price("gpt-4o-mini-2024-07-18", local=False) == (0.15, 0.60)  # the base model's price is unchanged
