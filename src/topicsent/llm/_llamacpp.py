"""A GGUF model run in this process by llama-cpp-python, with JSON-schema constrained decoding.

The model is a packaged name (``topicsent models list``) or a path to a ``.gguf``
file. Decoding is constrained by a grammar built from the answer schema, so the
answer is valid JSON with allowed categories and polarities by construction; the
parser still checks it. One model answers one request at a time (llama.cpp contexts
are not thread-safe); the work runs in a thread so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from pathlib import Path
from typing import Any

from topicsent._provenance import file_sha256
from topicsent.errors import InvalidParameterError
from topicsent.llm._backend import Backend, BackendError, ChatRequest, RawCompletion, file_id
from topicsent.llm._packaged import PACKAGED_LLMS, packaged_model_path


def resolve_gguf(model: str) -> Path:
    """The GGUF file of a packaged model name or a path."""
    if model in PACKAGED_LLMS:
        return packaged_model_path(model)
    path = Path(model).expanduser()
    if not path.is_file() or path.suffix.lower() != ".gguf":
        raise InvalidParameterError(f"{model!r} is neither a packaged model ({', '.join(PACKAGED_LLMS)}) nor a .gguf file")
    return path


class LlamaCppBackend(Backend):
    name = "llamacpp"
    parallel_requests = 1

    def __init__(self, model: str, *, n_ctx: int = 4096, n_threads: int | None = None, lora: str | None = None) -> None:
        super().__init__(model)
        self.path = resolve_gguf(model)
        self.lora = Path(lora).expanduser() if lora else None  # a llama.cpp LoRA adapter GGUF (e.g. from `sft`)
        if self.lora is not None and not self.lora.is_file():
            raise InvalidParameterError(f"LoRA adapter {lora} does not exist")
        self.n_ctx = n_ctx
        self.n_threads = n_threads or len(os.sched_getaffinity(0))  # the CPUs this process may use (taskset, containers)
        self._llama = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return file_id(self.path) + (f"+{file_sha256(self.lora)[:16]}" if self.lora else "")

    def _load(self):
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise InvalidParameterError(
                    "the llamacpp backend needs llama-cpp-python: pip install 'topicsent[llamacpp]'"
                ) from None
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # a busy-waiting thread starves the other core's work
            self._llama = Llama(
                model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False,
                lora_path=str(self.lora) if self.lora else None,
            )  # fmt: skip
            # freed with this backend, or at exit while llama_cpp still exists (its own __del__ at
            # interpreter shutdown finds the library gone and prints a TypeError)
            weakref.finalize(self, self._llama.close)
        return self._llama

    def _complete(self, request: ChatRequest) -> RawCompletion:
        options: dict[str, Any] = {}
        if request.schema is not None:
            options["response_format"] = {"type": "json_object", "schema": request.schema}
        with self._lock:
            llama = self._load()
            try:
                result = llama.create_chat_completion(
                    messages=request.message_dicts, max_tokens=request.max_tokens, temperature=request.temperature,
                    seed=request.seed, **options,
                )  # fmt: skip
            except ValueError as error:  # e.g. the prompt does not fit the context window
                raise BackendError(f"llama.cpp refused the request: {error}", retryable=False) from None
        usage = result.get("usage") or {}
        choice = result["choices"][0]
        return RawCompletion(
            text=choice["message"]["content"] or "",
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason"),  # llama.cpp says "length" when max_tokens cut it off
        )

    async def complete(self, request: ChatRequest) -> RawCompletion:
        return await asyncio.to_thread(self._complete, request)
