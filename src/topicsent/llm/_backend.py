"""The small interface every LLM backend implements, and the backend registry.

A backend turns one chat request into one completion and says, when it fails,
whether trying again may help. Everything else (cache, retries, rate limits, cost,
concurrency) lives once in :class:`topicsent.llm.LlmClient`, so a new backend is one
file with one ``complete`` coroutine plus a ``topicsent.backends`` entry point.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from topicsent._extras import extras_needed
from topicsent.errors import InvalidParameterError, UnknownNameError

ENTRY_POINT_GROUP = "topicsent.backends"


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to make. ``schema`` asks for constrained JSON output where
    the backend can enforce it (and is always enforced afterwards by validation)."""

    messages: tuple[tuple[str, str], ...]
    schema: dict[str, Any] | None = None
    max_tokens: int = 300
    temperature: float = 0.0
    seed: int = 0

    @classmethod
    def of(cls, messages: list[dict[str, str]], **options: Any) -> ChatRequest:
        return cls(tuple((m["role"], m["content"]) for m in messages), **options)

    @property
    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def key(self, backend: str, model: str, prompt_hash: str) -> str:
        """Cache key: everything that can change the answer, including the version
        (hash) of the prompt templates the messages were rendered from."""
        payload = json.dumps(
            [backend, model, prompt_hash, self.messages, self.schema, self.max_tokens, self.temperature, self.seed],
            sort_keys=True, ensure_ascii=False,
        )  # fmt: skip
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def prompt_chars(self) -> int:
        return sum(len(content) for _, content in self.messages)


#: Why a generation stopped, as OpenAI-compatible servers say it: ``stop`` (the model
#: ended its answer), ``length`` (cut off at ``max_tokens``), ``content_filter``.
FINISH_REASONS = ("stop", "length", "content_filter")


@dataclass(frozen=True)
class RawCompletion:
    """A backend's answer: the text, token counts, and ``finish_reason`` (why the
    generation stopped, see :data:`FINISH_REASONS`; None when the backend cannot tell)."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None


class Backend(ABC):
    """A chat model. ``local`` backends run on this machine (no cost, no rate limit)."""

    name: ClassVar[str]
    local: ClassVar[bool] = True
    #: Requests the backend can really serve at once (an in-process model: one); the
    #: client never has more in flight, so latencies are not inflated by queueing.
    parallel_requests: ClassVar[int | None] = None

    def __init__(self, model: str) -> None:
        self.model = model

    @property
    def model_id(self) -> str:
        """What identifies the model's weights in cache keys (name, or file and size)."""
        return self.model

    @abstractmethod
    async def complete(self, request: ChatRequest) -> RawCompletion:
        """One completion, saying why it stopped (``finish_reason``); raises
        :class:`BackendError` on failure."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Release connections or memory (default: nothing to release)."""


def file_id(path: Path) -> str:
    """A model file's identity for cache keys without hashing a gigabyte: name, size, mtime."""
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}"


@cache
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def backend_names() -> list[str]:
    return sorted(_entry_points())


def parse_backend_spec(spec: str) -> tuple[str, str]:
    """``"llamacpp:qwen2.5-coder-1.5b-instruct"`` -> ``("llamacpp", "qwen2.5-coder-1.5b-instruct")``;
    the model part may itself contain colons (``openai:llama3:8b``)."""
    backend, colon, model = spec.partition(":")
    if not colon or not backend or not model:
        raise InvalidParameterError(f"expected BACKEND:MODEL (e.g. llamacpp:qwen2.5-coder-1.5b-instruct), got {spec!r}")
    return backend, model


def make_backend(name: str, model: str, **options: Any) -> Backend:
    """A backend by registered name, e.g. ``make_backend("openai", "gpt-4o-mini", base_url=...)``."""
    try:
        entry_point = _entry_points()[name]
    except KeyError:
        raise UnknownNameError(f"unknown LLM backend {name!r}; registered: {', '.join(backend_names())}") from None
    with extras_needed(f"the {name} backend"):
        backend_class = entry_point.load()
    try:  # only a call that does not fit the constructor is the user's error; a TypeError inside it is a bug
        inspect.signature(backend_class).bind(model, **options)
    except TypeError as error:
        raise InvalidParameterError(f"backend {name!r}: {error}") from None
    with extras_needed(f"the {name} backend"):
        return backend_class(model, **options)
