"""The LLM backend layer: backends, the client (cache, limits, retries, cost budget,
call log), prices, prompt-template files and the instruction LLMs that ship inside
registry packages.

It knows nothing above it: what a method asks and how it reads the answers live with
the method (:mod:`topicsent.methods.llm`, :mod:`topicsent.topics`). A backend plug-in
subclasses :class:`Backend` (one ``complete`` coroutine) and registers it as a
``topicsent.backends`` entry point; it needs nothing private.
"""

from topicsent.errors import AnswerError, BackendError, BudgetExceededError
from topicsent.llm._backend import (
    ENTRY_POINT_GROUP,
    FINISH_REASONS,
    Backend,
    ChatRequest,
    RawCompletion,
    backend_names,
    file_id,
    make_backend,
    parse_backend_spec,
)
from topicsent.llm._client import (
    Checked,
    ClientStats,
    Completion,
    Limits,
    LlmClient,
    RateLimiter,
    ask_checked,
    json_object,
    new_run_id,
    run_sync,
    stop_problem,
)
from topicsent.llm._costs import PRICES_ENV, call_cost, model_price, price_table
from topicsent.llm._llamacpp import LlamaCppBackend
from topicsent.llm._packaged import PACKAGED_LLMS, PackagedModel, install_packages, model_dir, packaged_model_path
from topicsent.llm._store import (
    LLM_CACHE_ENV,
    MIGRATIONS,
    PARSE_STATUSES,
    SCHEMA_VERSION,
    CallRecord,
    LlmStore,
    llm_cache_path,
    migrate,
)
from topicsent.llm._templates import (
    LANGUAGES,
    check_language,
    prompt_language,
    repair_message,
    template,
    templates_hash,
)
from topicsent.llm._templates import (
    REPAIR as REPAIR_TEMPLATE,
)
from topicsent.llm._transformers import TransformersBackend

__all__ = [
    "ENTRY_POINT_GROUP",
    "FINISH_REASONS",
    "LANGUAGES",
    "LLM_CACHE_ENV",
    "MIGRATIONS",
    "PACKAGED_LLMS",
    "PARSE_STATUSES",
    "PRICES_ENV",
    "REPAIR_TEMPLATE",
    "SCHEMA_VERSION",
    "AnswerError",
    "Backend",
    "BackendError",
    "BudgetExceededError",
    "CallRecord",
    "ChatRequest",
    "Checked",
    "ClientStats",
    "Completion",
    "Limits",
    "LlamaCppBackend",
    "LlmClient",
    "LlmStore",
    "PackagedModel",
    "RateLimiter",
    "RawCompletion",
    "TransformersBackend",
    "ask_checked",
    "backend_names",
    "call_cost",
    "check_language",
    "file_id",
    "install_packages",
    "json_object",
    "llm_cache_path",
    "make_backend",
    "migrate",
    "model_dir",
    "model_price",
    "new_run_id",
    "packaged_model_path",
    "parse_backend_spec",
    "price_table",
    "prompt_language",
    "repair_message",
    "run_sync",
    "stop_problem",
    "template",
    "templates_hash",
]  # fmt: skip


def __getattr__(name: str):
    """``OpenAIBackend`` on first use: it imports httpx, which a core install lacks."""
    if name == "OpenAIBackend":
        from topicsent.llm._openai import OpenAIBackend

        return OpenAIBackend
    raise AttributeError(f"module 'topicsent.llm' has no attribute {name!r}")
