"""The LLM call log: a versioned layout with migrations, and what each call row says
(the run and method that made it, and how its answer parsed, logged after parsing)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from topicsent.errors import TopicsentError
from topicsent.llm import SCHEMA_VERSION, Backend, ChatRequest, LlmClient, LlmStore, RawCompletion, ask_checked, json_object

# The layout written before the log had a version (user_version 0), as topicsent wrote it then.
UNVERSIONED = """
CREATE TABLE responses (key TEXT PRIMARY KEY, text TEXT NOT NULL, input_tokens INTEGER, output_tokens INTEGER, created REAL);
CREATE TABLE calls (
    timestamp REAL, backend TEXT, model TEXT, prompt_hash TEXT, input_tokens INTEGER, output_tokens INTEGER,
    latency_ms REAL, cost_usd REAL, cache_hit INTEGER, outcome TEXT
);
INSERT INTO responses VALUES ('k1', '{"rating": 4}', 10, 3, 1700000000.0);
INSERT INTO calls VALUES (1700000000.0, 'openai', 'gpt-4o-mini', 'abc', 10, 3, 120.5, 0.0001, 0, 'ok');
"""


class Answers(Backend):
    """Gives the scripted texts in turn."""

    name = "answers"

    def __init__(self, *texts: str) -> None:
        super().__init__("scripted-model")
        self.texts = list(texts)

    async def complete(self, request: ChatRequest) -> RawCompletion:
        return RawCompletion(self.texts.pop(0), input_tokens=5, output_tokens=2, finish_reason="stop")


def test_an_unversioned_log_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "llm.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(UNVERSIONED)
    store = LlmStore(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        columns = {row[1] for row in db.execute("PRAGMA table_info(calls)")}
    assert {"run_id", "method", "parse_status"} <= columns
    [old] = store.calls()
    assert (old.backend, old.prompt_hash, old.outcome, old.cache_hit) == ("openai", "abc", "ok", False)
    assert (old.run_id, old.method, old.parse_status) == (None, None, None)  # unknown, not made up
    assert store.get("k1").text == '{"rating": 4}' and store.get("k1").finish_reason is None
    LlmStore(path)  # opening again changes nothing
    assert len(store.calls()) == 1


def test_a_log_from_a_newer_topicsent_is_refused_not_damaged(tmp_path):
    path = tmp_path / "llm.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(TopicsentError, match="newer topicsent"):
        LlmStore(path)


def _check(text: str) -> dict:
    value = json_object(text)
    if "rating" not in value:
        raise ValueError("no rating")
    return value


def test_each_call_is_logged_with_its_run_method_and_parse_outcome(tmp_path):
    store = LlmStore(tmp_path / "llm.sqlite")
    client = LlmClient(Answers('{"stars": 4}', '{"rating": 4}'), store=store, run_id="run-1", method="llm")
    checked = asyncio.run(
        ask_checked(client, [{"role": "user", "content": "rate"}], ChatRequest.of, _check, lambda p: f"again: {p}", "h")
    )
    assert checked.value == {"rating": 4} and checked.repaired
    first, repair = sorted(store.calls(), key=lambda call: call.timestamp)
    assert [(c.run_id, c.method, c.outcome) for c in (first, repair)] == [("run-1", "llm", "ok")] * 2
    assert (first.parse_status, repair.parse_status) == ("failed", "ok")  # the call succeeded; its answer did not


def test_a_call_is_not_logged_as_parsed_before_it_is_checked(tmp_path):
    store = LlmStore(tmp_path / "llm.sqlite")
    client = LlmClient(Answers('{"rating": 2}'), store=store, method="llm")
    completion = asyncio.run(client.complete(ChatRequest.of([{"role": "user", "content": "x"}]), prompt_hash="h"))
    [call] = store.calls()
    assert call.parse_status is None and call.outcome == "ok" and len(call.run_id) == 12
    client.record_parse(completion, "partial")
    assert store.calls()[0].parse_status == "partial"
    with pytest.raises(ValueError, match="parse status"):
        store.set_parse_status([completion.call_id], "fine")
