"""Optional dependencies (the extras of ``pyproject.toml``), imported when first needed.

One helper, so a missing extra reads the same everywhere: what needs it and the exact
``pip install`` line, in one line the CLI prints with exit code 2.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from topicsent.errors import InvalidParameterError


def import_extra(module: str, *, extra: str, purpose: str, package: str | None = None) -> ModuleType:
    """Import ``module``, which the extra ``topicsent[extra]`` installs.

    Parameters
    ----------
    module : str
        The import name, e.g. ``"duckdb"`` or ``"onnxruntime.quantization"``.
    extra : str
        The extra of ``pyproject.toml`` that installs it.
    purpose : str
        What needs it, for the message: ``"storing runs in DuckDB"``.
    package : str, optional
        Its distribution name when it differs from the import name (``llama-cpp-python``).

    Returns
    -------
    types.ModuleType

    Raises
    ------
    InvalidParameterError
        When it is not installed: ``storing runs in DuckDB needs duckdb: pip install 'topicsent[sql]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        package = package or module.split(".")[0]
        raise InvalidParameterError(f"{purpose} needs {package}: pip install 'topicsent[{extra}]'") from None
