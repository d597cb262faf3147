"""LLM backend faults: a fault-injecting HTTP proxy on 127.0.0.2 in front of the real
llama.cpp server. In turn it times out, resets connections, answers 429 with
Retry-After, 500, a truncated body, a body that is not JSON, an answer in the wrong
schema and one with a category outside the taxonomy, and forwards every other request.

The `llm` method must end every review as ok, unparsed (raw kept) or error, guess no
label, abort nothing, retry the transient faults, and keep within its cost budget.
The proxy is on 127.0.0.2, so the client treats it as a paid endpoint (prices from
``$TOPICSENT_LLM_PRICES``), which is what makes the budget count.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter

import httpx
import pytest

from conftest import SERVED_MODEL
from topicsent.methods import make_method

pytestmark = pytest.mark.stress  # ~2.5 minutes: injected timeouts and backoff waits are real time
FAULTS = ["ok", "timeout", "reset", "429", "ok", "500", "truncated", "malformed", "ok", "wrong_schema", "out_of_taxonomy"]
CLIENT_TIMEOUT = 3.0
PROXY_HOST = "127.0.0.2"


class FaultProxy:
    """A minimal HTTP/1.1 server in a thread: the n-th request gets FAULTS[n % len]."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        self.ready.wait(10)
        return f"http://{PROXY_HOST}:{self.port}/v1"

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, PROXY_HOST, 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: several requests per connection
                head = await reader.readuntil(b"\r\n\r\n")
                body = await reader.readexactly(_content_length(head))
                fault = FAULTS[self.requests % len(FAULTS)]
                self.requests += 1
                self.injected[fault] += 1
                if not await self._answer(fault, head, body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    async def _answer(self, fault: str, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        """Write the (faulty) response; False when the connection must end."""
        if fault == "timeout":
            await asyncio.sleep(CLIENT_TIMEOUT + 1)
            return False
        if fault == "reset":
            writer.transport.abort()
            return False
        if fault in ("429", "500"):
            extra = b"Retry-After: 1\r\n" if fault == "429" else b""
            _respond(writer, int(fault), b'{"error": "injected"}', extra)
            return True
        if fault == "malformed":
            _respond(writer, 200, b"{not json at all")
            return True
        if fault in ("wrong_schema", "out_of_taxonomy"):
            content = (
                '{"aspects": "food"}'
                if fault == "wrong_schema"
                else ('{"aspects": [{"aspect": "weather", "polarity": "positive", "confidence": 0.9}]}')
            )
            _respond(writer, 200, _completion(content))
            return True
        path = head.split(b" ")[1].decode()
        async with httpx.AsyncClient(timeout=120) as client:
            upstream = await client.post(self.upstream + path.removeprefix("/v1"), content=body,
                                         headers={"content-type": "application/json"})  # fmt: skip
        if fault == "truncated":
            writer.write(_head(upstream.status_code, len(upstream.content)) + upstream.content[: len(upstream.content) // 2])
            await writer.drain()
            return False
        _respond(writer, upstream.status_code, upstream.content)
        return True


def _content_length(head: bytes) -> int:
    lines = head.split(b"\r\n")
    return next((int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length")), 0)


def _head(status: int, length: int, extra: bytes = b"") -> bytes:
    return f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n".encode() + extra + b"\r\n"


def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, extra: bytes = b"") -> None:
    writer.write(_head(status, len(body), extra) + body)


def _completion(content: str) -> bytes:
    message = {"role": "assistant", "content": content}
    return json.dumps({"choices": [{"message": message}], "usage": {"prompt_tokens": 100, "completion_tokens": 20}}).encode()


@pytest.fixture
def paid_endpoint(tmp_path, monkeypatch):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({SERVED_MODEL: [10.0, 30.0]}))  # USD per 1M tokens: made up, for the budget
    monkeypatch.setenv("TOPICSENT_LLM_PRICES", str(prices))
    monkeypatch.setenv("OPENAI_API_KEY", "not-a-real-key")
    monkeypatch.setenv("TOPICSENT_LLM_CACHE", str(tmp_path / "llm.sqlite"))


def _method(base_url: str, **params):
    options = {"timeout": CLIENT_TIMEOUT, "schema_mode": "json_object"}
    return make_method("llm", backend="openai", base_url=base_url, model=SERVED_MODEL, backend_options=options,
                       max_tokens=200, max_retries=4, cache=False, **params)  # fmt: skip


def test_injected_faults_end_in_honest_rows(llama_server, task_data, paid_endpoint):
    train, test = task_data["acsa"]
    reviews = test.unlabelled()[:12]
    proxy = FaultProxy(llama_server)
    with proxy as proxy_url:
        method = _method(proxy_url).fit(train)
        analyses = method.predict(reviews, given_aspects=True)
    statuses = Counter(a.status for a in analyses)
    report = method.run_report()
    print(f"\nfaults injected {dict(proxy.injected)}; rows {dict(statuses)}; client {report}")
    assert set(proxy.injected) == set(FAULTS), "every kind of fault was tried"
    assert [a.review_id for a in analyses] == [r.id for r in reviews], "a batch abort or a lost row"
    assert set(statuses) <= {"ok", "unparsed", "error"} and statuses["ok"] >= 1
    for analysis in analyses:
        if analysis.status != "ok":
            assert not analysis.aspects and analysis.overall.rating is None and analysis.status_reason  # nothing guessed
        if analysis.status == "unparsed":
            assert analysis.raw
        for aspect in analysis.aspects:
            assert aspect.aspect in reviews.label_space.categories  # never the injected "weather"
    assert report["retries"] >= 5


def test_the_cost_budget_holds_under_faults(llama_server, task_data, paid_endpoint):
    train, test = task_data["acsa"]
    budget = 0.05  # a few calls' worth at the made-up prices
    with FaultProxy(llama_server) as proxy_url:
        method = _method(proxy_url, max_cost=budget).fit(train)
        analyses = method.predict(test.unlabelled()[:12], given_aspects=True)
    report = method.run_report()
    statuses = Counter(a.status for a in analyses)
    print(f"\nbudget ${budget}: spent ${report['cost_usd']:.4f}; rows {dict(statuses)}")
    assert report["cost_usd"] <= budget
    assert statuses["error"] >= 1 and any("budget" in (a.status_reason or "") for a in analyses)
