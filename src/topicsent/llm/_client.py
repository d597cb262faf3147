"""Calling a backend well: cache, concurrency, rate limits, retries, cost budget, call log.

Every backend gets the same behaviour from here: at most ``max_concurrency`` requests
in flight, requests and tokens per minute kept under their limits, retries with
exponential backoff and jitter (or the server's ``Retry-After``) on timeouts, 429 and
5xx, and a cost budget that stops cleanly: a call that could overrun it is not made
and raises :class:`BudgetExceededError`, which the caller turns into per-row statuses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from topicsent._extras import require
from topicsent.errors import AnswerError, BackendError, BudgetExceededError, TopicsentError
from topicsent.llm._backend import Backend, ChatRequest
from topicsent.llm._costs import call_cost, model_price
from topicsent.llm._store import CallRecord, LlmStore

CHARS_PER_TOKEN = 3  # a cautious estimate for budgets and token rate limits before the call is made
MAX_RETRY_AFTER = 60.0
T = TypeVar("T")

if TYPE_CHECKING:
    from tenacity import RetryCallState


@dataclass(frozen=True)
class Limits:
    max_concurrency: int = 4
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_retries: int = 4
    max_cost: float | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float | None
    cache_hit: bool
    finish_reason: str | None = None  # see topicsent.llm.FINISH_REASONS
    call_id: int | None = None  # the call's row in the log, for LlmClient.record_parse


@dataclass
class ClientStats:
    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class RateLimiter:
    """Sliding one-minute windows (``window`` seconds) of requests and (estimated) tokens."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None, window: float = 60.0) -> None:
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.window = window
        self._events: deque[tuple[float, int]] = deque()
        self._lock = asyncio.Lock()

    def _fits(self, tokens: int) -> bool:
        if self.requests_per_minute is not None and len(self._events) >= self.requests_per_minute:
            return False
        used = sum(t for _, t in self._events)
        return self.tokens_per_minute is None or not self._events or used + tokens <= self.tokens_per_minute

    async def acquire(self, tokens: int) -> None:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            return
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._events and now - self._events[0][0] >= self.window:
                    self._events.popleft()
                if self._fits(tokens):
                    self._events.append((now, tokens))
                    return
                await asyncio.sleep(max(self.window - (now - self._events[0][0]), 0.01))


def _wait(state: RetryCallState) -> float:
    """The server's Retry-After when it gave one, else exponential backoff with full jitter."""
    error = state.outcome.exception() if state.outcome else None
    hint = getattr(error, "retry_after", None)
    if hint is not None:
        return min(max(hint, 0.0), MAX_RETRY_AFTER)
    return require("tenacity").wait_random_exponential(multiplier=0.5, max=30)(state)


def _retryable(error: BaseException) -> bool:
    return isinstance(error, BackendError) and error.retryable


class LlmClient:
    """One backend behind the shared cache, limits and accounting."""

    def __init__(
        self,
        backend: Backend,
        *,
        store: LlmStore | None,
        limits: Limits = Limits(),
        stats: ClientStats | None = None,
        run_id: str | None = None,
        method: str | None = None,
    ) -> None:
        """``run_id`` and ``method`` go into every logged call (default run id: a new
        one per client, so the calls of one prediction run can be told apart)."""
        self.backend = backend
        self.run_id = run_id or new_run_id()
        self.method = method
        self.store = store
        self.limits = limits
        self.price = model_price(backend.model, local=backend.local)
        if limits.max_cost is not None and self.price is None:
            raise TopicsentError(
                f"no price known for model {backend.model!r}, so a cost budget cannot be kept; "
                "give its prices in $TOPICSENT_LLM_PRICES (JSON: {model: [input, output] USD per 1M tokens})"
            )
        self.stats = stats or ClientStats()  # shared across clients, so a budget spans a whole prediction run
        self._semaphore = asyncio.Semaphore(min(limits.max_concurrency, backend.parallel_requests or limits.max_concurrency))
        self._rate = RateLimiter(limits.requests_per_minute, limits.tokens_per_minute)
        self._reserved = 0.0

    async def complete(self, request: ChatRequest, *, prompt_hash: str) -> Completion:
        """A completion from the cache or the backend (raises :class:`BackendError` once
        retries are used up, :class:`BudgetExceededError` when the budget forbids the call)."""
        key = request.key(self.backend.name, self.backend.model_id, prompt_hash)
        cached = self.store.get(key) if self.store else None
        if cached is not None:
            self.stats.cache_hits += 1
            call_id = self._log(prompt_hash, cached.input_tokens, cached.output_tokens, 0.0, 0.0, cache_hit=True, outcome="ok")
            reason = cached.finish_reason
            return Completion(cached.text, cached.input_tokens, cached.output_tokens, 0.0, 0.0, True, reason, call_id)
        estimate = self._reserve(request)
        try:
            async with self._semaphore:
                return await self._call(request, key, prompt_hash)
        finally:
            self._reserved -= estimate

    def _reserve(self, request: ChatRequest) -> float:
        """Hold the call's worst-case cost against the budget while it runs."""
        estimate = call_cost(self.price, request.prompt_chars // CHARS_PER_TOKEN, request.max_tokens) or 0.0
        budget = self.limits.max_cost
        if budget is not None and self.stats.cost_usd + self._reserved + estimate > budget:
            raise BudgetExceededError(f"cost budget of ${budget:.4f} reached (spent ${self.stats.cost_usd:.4f})")
        self._reserved += estimate
        return estimate

    async def _call(self, request: ChatRequest, key: str, prompt_hash: str) -> Completion:
        tenacity = require("tenacity", needed_by="calling an LLM")  # lazily: a core install lists methods without it
        began = time.perf_counter()
        try:
            async for attempt in tenacity.AsyncRetrying(
                retry=tenacity.retry_if_exception(_retryable), wait=_wait, reraise=True,
                stop=tenacity.stop_after_attempt(self.limits.max_retries + 1), before_sleep=self._count_retry,
            ):  # fmt: skip
                with attempt:
                    await self._rate.acquire(request.prompt_chars // CHARS_PER_TOKEN + request.max_tokens)
                    raw = await self.backend.complete(request)
        except BackendError as error:
            self.stats.failures += 1
            self._log(prompt_hash, 0, 0, (time.perf_counter() - began) * 1000, 0.0, cache_hit=False, outcome=str(error)[:200])
            raise
        latency_ms = (time.perf_counter() - began) * 1000
        cost = call_cost(self.price, raw.input_tokens, raw.output_tokens)
        self.stats.calls += 1
        self.stats.input_tokens += raw.input_tokens
        self.stats.output_tokens += raw.output_tokens
        self.stats.cost_usd += cost or 0.0
        if self.store:
            self.store.put(key, raw)
        call_id = self._log(prompt_hash, raw.input_tokens, raw.output_tokens, latency_ms, cost, cache_hit=False, outcome="ok")
        return Completion(
            raw.text, raw.input_tokens, raw.output_tokens, latency_ms, cost, cache_hit=False, finish_reason=raw.finish_reason,
            call_id=call_id,
        )  # fmt: skip

    def record_parse(self, completion: Completion, status: str) -> None:
        """Log how ``completion``'s answer parsed (``ok``, ``partial`` or ``failed``), once
        the caller checked it: the log never calls an answer usable before it was read."""
        if self.store and completion.call_id is not None:
            self.store.set_parse_status([completion.call_id], status)

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1

    def _log(self, prompt_hash: str, tokens_in: int, tokens_out: int, latency_ms: float, cost: float | None, *,
             cache_hit: bool, outcome: str) -> int | None:  # fmt: skip
        if not self.store:
            return None
        return self.store.log(
            CallRecord(time.time(), self.backend.name, self.backend.model, prompt_hash, tokens_in, tokens_out,
                       latency_ms, cost, cache_hit, outcome, self.run_id, self.method)
        )  # fmt: skip


def new_run_id() -> str:
    """A short random id for the calls of one run."""
    return uuid.uuid4().hex[:12]


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, also when an event loop is
    already running in this thread (a notebook, a web server): then in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@dataclass
class Checked(Generic[T]):
    """An answer after the check and at most one repair turn: ``value`` when it passed,
    else ``problem``; ``completions`` are the calls made (for usage and the raw text)."""

    value: T | None
    completions: list[Completion]
    problem: str | None = None

    @property
    def raw(self) -> str:
        return self.completions[-1].text

    @property
    def repaired(self) -> bool:
        """Whether a repair turn was asked (not when the answer was cut off or filtered)."""
        return len(self.completions) > 1


def stop_problem(completion: Completion, max_tokens: int) -> str | None:
    """Why an answer that failed its check cannot be repaired by asking again: cut off
    at the token limit (a repair at the same limit is cut off too) or stopped by the
    server's content filter. None when the model ended the answer itself."""
    if completion.finish_reason == "length":
        return (
            f"the answer was cut off at the token limit (max_tokens={max_tokens}) before it was complete; "
            "raise max_tokens (or shorten the prompt) and run again"
        )
    if completion.finish_reason == "content_filter":
        return "the server's content filter stopped the answer; a repair turn would be filtered too"
    return None


def json_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text``; a code fence or words around it are tolerated (the
    object itself is not altered)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise AnswerError("the answer contains no JSON object")
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError as error:
        raise AnswerError(f"the answer is not valid JSON: {error.msg} at character {error.pos}") from None
    if not isinstance(value, dict):
        raise AnswerError("the answer must be a JSON object")
    return value


def _checked(client: LlmClient, check: Callable[[str], T], completion: Completion) -> T:
    """``check(completion.text)``, with its outcome logged for the call."""
    try:
        value = check(completion.text)
    except ValueError:
        client.record_parse(completion, "failed")
        raise
    client.record_parse(completion, "ok")
    return value


async def ask_checked(
    client: LlmClient,
    messages: list[dict[str, str]],
    make_request: Callable[[list[dict[str, str]]], ChatRequest],
    check: Callable[[str], T],
    repair_message: Callable[[str], str],
    prompt_hash: str,
) -> Checked[T]:
    """Ask, check the answer (``check`` raises ``ValueError`` saying what is wrong), and
    when it fails ask once more with the problem spelled out, unless the generation was
    cut off at the token limit or filtered (:func:`stop_problem`): then the problem says
    so and no useless repair call is made. Backend failures and the budget propagate as
    :class:`BackendError` / :class:`BudgetExceededError`."""
    request = make_request(messages)
    completions = [await client.complete(request, prompt_hash=prompt_hash)]
    try:
        return Checked(_checked(client, check, completions[-1]), completions)
    except ValueError as problem:
        if stopped := stop_problem(completions[-1], request.max_tokens):
            return Checked(None, completions, stopped)
        turn = [{"role": "assistant", "content": completions[-1].text}, {"role": "user", "content": repair_message(str(problem))}]
        completions.append(await client.complete(make_request(messages + turn), prompt_hash=prompt_hash))
    try:
        return Checked(_checked(client, check, completions[-1]), completions)
    except ValueError as still:
        return Checked(None, completions, stop_problem(completions[-1], request.max_tokens) or str(still))
