"""Methods by name, registered as ``topicsent.methods`` entry points.

A new method is one module plus one line in ``pyproject.toml``; third-party packages
add methods the same way, and the contract tests pick every registered one up.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from topicsent.errors import UnknownNameError

ENTRY_POINT_GROUP = "topicsent.methods"


@cache
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def method_names() -> list[str]:
    """Names of all registered methods, sorted."""
    return sorted(_entry_points())


def method_class(name: str) -> type:
    """The class registered under ``name``."""
    try:
        entry_point = _entry_points()[name]
    except KeyError:
        known = ", ".join(method_names()) or "none (is topicsent installed? run: pip install -e .)"
        raise UnknownNameError(f"unknown method {name!r}; registered methods: {known}") from None
    return entry_point.load()


def make_method(name: str, **params: Any):
    """A new unfitted method by name, e.g. ``make_method("tfidf-lr", C=0.5)``; an
    unknown parameter is an :class:`InvalidParameterError` naming the valid ones."""
    return method_class(name)().set_params(**params)
