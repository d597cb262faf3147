"""An instruction LLM as a method: zero-shot, fixed few-shot, or retrieval few-shot prompting.

``fit`` learns no weights: it keeps the label space (taxonomy, polarities, rating
scale) and, per ``strategy``, no examples, k fixed examples, or an index of labelled
reviews to fetch the k most similar ones for each review. ``predict`` asks the backend
for one JSON answer per review (or per group of ``reviews_per_prompt``), validates it
(:mod:`topicsent.methods.llm._answer`), gives a wrong answer one repair turn with the problem
spelled out, and otherwise returns ``unparsed`` with the raw answer. A failed call
is an ``error`` row; neither ever becomes a guessed label, and one bad row never stops
the others.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

from topicsent.data import Review, ReviewSet
from topicsent.encoders import default_encoder
from topicsent.llm import (
    Backend,
    BackendError,
    BudgetExceededError,
    ChatRequest,
    ClientStats,
    Completion,
    Limits,
    LlmClient,
    LlmStore,
    ask_checked,
    make_backend,
    new_run_id,
    run_sync,
)
from topicsent.methods._base import BaseMethod
from topicsent.methods._pipeline import overall_from_aspects
from topicsent.methods.llm._answer import (
    AnswerError,
    ParsedAnswer,
    Question,
    answer_schema,
    batch_schema,
    gold_answer,
    parse_answer,
    split_batch,
)
from topicsent.methods.llm._examples import ExampleIndex, load_reviews, save_reviews, stratified_examples
from topicsent.methods.llm._prompts import Example, PromptSet, prompt_language
from topicsent.schema import Overall, ReviewAnalysis, Task, Usage

STRATEGIES = ("zero-shot", "few-shot", "retrieval")
EXAMPLES_FILE = "examples.jsonl"
STATE_FILE = "llm.json"


class LlmMethod(BaseMethod):
    """Prompted instruction LLM (local GGUF, local transformers model, or any OpenAI-compatible server).

    Parameters
    ----------
    backend : {"llamacpp", "openai", "transformers"} or another registered backend
    model : str
        A packaged model name (``topicsent models list``), a ``.gguf`` path, a model
        directory, or the model name an OpenAI-compatible server knows.
    base_url : str, optional
        Endpoint of the ``openai`` backend (default ``$OPENAI_BASE_URL`` or OpenAI).
    backend_options : dict, optional
        Further backend settings, e.g. ``{"api_key_env": "GEMINI_API_KEY"}``, ``{"n_threads": 2}``,
        ``{"adapter": "path/to/lora"}``.
    strategy : {"zero-shot", "few-shot", "retrieval"}
    k : int
        Examples per prompt for few-shot and retrieval.
    encoder : str, optional
        Sentence encoder of the retrieval index (default: MiniLM for English,
        multilingual-e5-small otherwise).
    pool_size : int
        At most this many training reviews (seeded sample) go into the retrieval index.
    reviews_per_prompt : int
        Reviews answered per call; > 1 saves prompt tokens on short reviews. A review
        whose part of a batched answer fails is asked again on its own.
    max_concurrency, requests_per_minute, tokens_per_minute, max_retries : limits of calls.
    max_cost : float, optional
        USD budget of this method's calls; rows after it is reached are ``error`` rows
        saying so.
    cache : bool
        Keep answers in the persistent response cache (``$TOPICSENT_CACHE_DIR/llm.sqlite``).
    """

    name = "llm"
    supported_tasks = frozenset({Task.ACSA, Task.ATSA, Task.RATING})
    answers_can_fail = True
    calibrate_by_default = False  # each validation review would cost a model call
    learns_each_category = False  # the taxonomy is in the prompt; examples are optional
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {
        "strategy": STRATEGIES, "k": "count", "pool_size": "count", "reviews_per_prompt": "count",
        "max_concurrency": "count", "max_tokens": "count", "max_review_chars": "count",
    }  # fmt: skip

    def __init__(
        self,
        *,
        backend: str = "llamacpp",
        model: str = "qwen2.5-coder-1.5b-instruct",
        base_url: str | None = None,
        backend_options: dict[str, Any] | None = None,
        strategy: str = "zero-shot",
        k: int = 4,
        encoder: str | None = None,
        pool_size: int = 5000,
        descriptions: dict[str, str] | None = None,
        evidence: bool = True,
        temperature: float = 0.0,
        max_tokens: int = 384,
        max_review_chars: int = 2000,
        reviews_per_prompt: int = 1,
        max_concurrency: int = 2,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        max_retries: int = 4,
        max_cost: float | None = None,
        cache: bool = True,
        random_state: int = 0,
    ) -> None:
        self.backend = backend
        self.model = model
        self.base_url = base_url
        self.backend_options = backend_options
        self.strategy = strategy
        self.k = k
        self.encoder = encoder
        self.pool_size = pool_size
        self.descriptions = descriptions
        self.evidence = evidence
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_review_chars = max_review_chars
        self.reviews_per_prompt = reviews_per_prompt
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.max_retries = max_retries
        self.max_cost = max_cost
        self.cache = cache
        self.random_state = random_state

    @property
    def batch_size(self) -> int:  # type: ignore[override]
        """Rows per progress step: enough to keep every allowed request in flight."""
        return max(8, 4 * self.max_concurrency * self.reviews_per_prompt)

    @property
    def model_name(self) -> str:
        return f"{self.backend}:{self.model}"

    # ----- fit: examples ---------------------------------------------------------------

    def _fit(self, reviews: ReviewSet) -> None:
        self.examples_: list[Review] = []
        self.index_: ExampleIndex | None = None
        self._reset_run_state()
        if self.strategy == "few-shot":
            self.examples_ = stratified_examples(reviews, self.task_, self.k, self.random_state)
        elif self.strategy == "retrieval":
            pool = reviews.with_reviews([r for r in reviews if r.aspects or self.task_ is Task.RATING])
            self.examples_ = list(pool.sample(self.pool_size, self.random_state))
            self.index_ = ExampleIndex(self._encoder_name()).build(self.examples_)
        self._make_backend()  # a missing model or key fails here, not mid-prediction

    def _reset_run_state(self) -> None:
        """Counters of the predictions to come, and no backend until the first call."""
        self.stats_ = ClientStats()
        self.run_id_ = new_run_id()  # tags this run's calls in the call log
        self.unparsed_ = 0
        self.evidence_dropped_ = 0
        self._backend_instance = None

    def _encoder_name(self) -> str:
        return self.encoder or default_encoder(self.language_)

    def _make_backend(self) -> Backend:
        if getattr(self, "_backend_instance", None) is None:
            options = dict(self.backend_options or {})
            if self.base_url:
                options["base_url"] = self.base_url
            self._backend_instance = make_backend(self.backend, self.model, **options)
        return self._backend_instance

    @property
    def prompts(self) -> PromptSet:
        return PromptSet(prompt_language(self.language_), self.max_review_chars, dict(self.descriptions or {}))

    def _question(self, review: Review, given_aspects: bool) -> Question:
        given = tuple(review.aspects) if given_aspects and self.task_ is not Task.RATING else None
        return Question(self.task_, self.label_space_, given, self.evidence)

    def _examples_for(self, reviews: Sequence[Review], question: Question) -> list[list[Example]]:
        """The examples each review is shown, as (review, its gold answer) pairs."""
        if self.strategy == "zero-shot":
            return [[] for _ in reviews]
        if self.strategy == "few-shot":
            chosen = [self.examples_] * len(reviews)
        else:  # nearest first in the index; shown nearest last, closest to the question
            chosen = [
                [self.examples_[i] for i in reversed(row)] for row in self.index_.nearest([r.text for r in reviews], self.k)
            ]
        return [[Example(r, gold_answer(r, question)) for r in row] for row in chosen]

    # ----- predict ---------------------------------------------------------------------

    def _predict(self, reviews: Sequence[Review], *, given_aspects: bool) -> list[ReviewAnalysis]:
        return run_sync(self._predict_async(reviews, given_aspects))

    async def _predict_async(self, reviews: Sequence[Review], given_aspects: bool) -> list[ReviewAnalysis]:
        backend = self._make_backend()
        limits = Limits(self.max_concurrency, self.requests_per_minute, self.tokens_per_minute, self.max_retries, self.max_cost)
        store = LlmStore() if self.cache else None
        client = LlmClient(backend, store=store, limits=limits, stats=self.stats_, run_id=self.run_id_, method=self.name)
        questions = [self._question(r, given_aspects) for r in reviews]
        examples = self._examples_for(
            reviews, Question(self.task_, self.label_space_, () if given_aspects else None, self.evidence)
        )
        groups = self._groups(len(reviews))
        try:
            answered = await asyncio.gather(
                *(self._answer_group(client, [(reviews[i], questions[i], examples[i]) for i in group]) for group in groups)
            )
        finally:
            await backend.aclose()
        return [row for rows in answered for row in rows]

    def _groups(self, count: int) -> list[list[int]]:
        size = self.reviews_per_prompt
        return [list(range(start, min(start + size, count))) for start in range(0, count, size)]

    def _request(self, messages: list[dict[str, str]], schema: dict, groups: int = 1) -> ChatRequest:
        return ChatRequest.of(
            messages, schema=schema, max_tokens=self.max_tokens * groups, temperature=self.temperature, seed=self.random_state
        )

    async def _answer_group(self, client: LlmClient, items: list[tuple[Review, Question, list[Example]]]) -> list[ReviewAnalysis]:
        if len(items) == 1:
            return [await self._answer_one(client, *items[0])]
        prompts = self.prompts
        shown = _merged_examples([examples for _, _, examples in items], self.k)
        messages = prompts.messages(items[0][1], [(r, q.given) for r, q, _ in items], shown)
        request = self._request(messages, batch_schema([answer_schema(q) for _, q, _ in items]), len(items))
        try:
            completion = await client.complete(request, prompt_hash=prompts.hash)
        except (BackendError, BudgetExceededError) as error:
            return [self._failed(review, "error", str(error)) for review, _, _ in items]
        results: list[ReviewAnalysis | None] = []
        for (review, question, _), part in zip(items, split_batch(completion.text, len(items)), strict=True):
            try:
                if isinstance(part, AnswerError):
                    raise part
                results.append(self._answered(review, parse_answer(part, review, question), [completion], len(items)))
            except AnswerError:
                results.append(None)
        parsed = sum(result is not None for result in results)
        client.record_parse(completion, "ok" if parsed == len(items) else "partial" if parsed else "failed")
        return [  # a review whose part of the answer is unusable is asked on its own, with its repair turn
            result if result is not None else await self._answer_one(client, *item)
            for item, result in zip(items, results, strict=True)
        ]

    async def _answer_one(self, client: LlmClient, review: Review, question: Question, examples: list[Example]) -> ReviewAnalysis:
        prompts = self.prompts
        schema = answer_schema(question)
        try:
            checked = await ask_checked(
                client, prompts.messages(question, [(review, question.given)], examples),
                lambda messages: self._request(messages, schema), lambda text: parse_answer(text, review, question),
                prompts.repair, prompts.hash,
            )  # fmt: skip
        except (BackendError, BudgetExceededError) as error:
            return self._failed(review, "error", str(error))
        if checked.value is None:
            self.unparsed_ += 1
            reason = f"invalid after one repair: {checked.problem}" if checked.repaired else checked.problem
            return self._failed(review, "unparsed", reason, checked.completions, raw=checked.raw)
        return self._answered(review, checked.value, checked.completions)

    def _answered(self, review: Review, parsed: ParsedAnswer, completions: list[Completion], share: int = 1) -> ReviewAnalysis:
        self.evidence_dropped_ += parsed.dropped_evidence
        if self.task_ is Task.RATING:
            overall = Overall(
                polarity=self.label_space_.rating_polarity(parsed.rating), rating=parsed.rating, confidence=parsed.confidence
            )
        else:
            overall = Overall(polarity=overall_from_aspects(parsed.aspects))
        return self._analysis(review, overall=overall, aspects=parsed.aspects, usage=_usage(completions, share))

    def _failed(self, review: Review, status: str, reason: str, completions: Sequence[Completion] = (), raw: str | None = None):
        return ReviewAnalysis.failed(
            review.id, status=status, reason=reason, method=self.name, language=review.language, model=self.model_name,
            raw=raw, usage=_usage(completions, 1),
        )  # fmt: skip

    def run_report(self) -> dict[str, Any]:
        """Calls, cache hits, retries, tokens and cost of this method's predictions so far."""
        return asdict(self.stats_) | {"unparsed": self.unparsed_, "evidence_dropped": self.evidence_dropped_}

    # ----- persistence -------------------------------------------------------------------

    def _save_state(self, directory: Path) -> None:
        save_reviews(self.examples_, directory / EXAMPLES_FILE)
        state = {"encoder": self._encoder_name() if self.index_ is not None else None, "prompt_hash": self.prompts.hash}
        (directory / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
        if self.index_ is not None:
            self.index_.save(directory)

    def _load_state(self, directory: Path) -> None:
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        self.examples_ = load_reviews(directory / EXAMPLES_FILE)
        self.index_ = ExampleIndex(state["encoder"]).load(directory) if state["encoder"] else None
        self._reset_run_state()


def _merged_examples(per_review: list[list[Example]], k: int) -> list[Example]:
    """One example list for a batched prompt: round-robin over the reviews' own lists,
    without repeats, at most ``k``."""
    merged: list[Example] = []
    for rank in range(max(map(len, per_review), default=0)):
        for examples in per_review:
            if rank < len(examples) and examples[-1 - rank] not in merged and len(merged) < k:
                merged.append(examples[-1 - rank])
    return merged[::-1]


def _usage(completions: Sequence[Completion], share: int) -> Usage:
    if not completions:
        return Usage()
    costs = [c.cost_usd for c in completions]
    return Usage(
        latency_ms=sum(c.latency_ms for c in completions) / share,
        input_tokens=sum(c.input_tokens for c in completions) // share,
        output_tokens=sum(c.output_tokens for c in completions) // share,
        cost_usd=None if None in costs else sum(costs) / share,
        cache_hit=all(c.cache_hit for c in completions),
    )
