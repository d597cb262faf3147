"""Methods by name, registered as ``topicsent.methods`` entry points.

A new method is one module plus one line in ``pyproject.toml``; third-party packages
add methods the same way, and the contract tests pick every registered one up.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from topicsent.errors import InvalidParameterError, UnknownNameError

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


def method_class_names() -> dict[str, str]:
    """Class name -> registered name of every method (``{"TfidfLRMethod": "tfidf-lr", ...}``),
    read from the entry points without importing any method's module."""
    return {ep.value.rpartition(":")[2]: name for name, ep in _entry_points().items()}


def make_method(name: str, **params: Any):
    """A new unfitted method by name, e.g. ``make_method("tfidf-lr", C=0.5)``; an
    unknown parameter is an :class:`InvalidParameterError` naming the valid ones."""
    return method_class(name)().set_params(**params)


_SPEC = re.compile(r"^\s*([\w.-]+)\s*(?:\[(.*)\])?\s*$")


def parse_method_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"embed-head[design=pair,epochs=10]"`` -> ``("embed-head", {"design": "pair", "epochs": 10})``.

    Values are read as JSON where they parse (numbers, true/false; Python's True/False
    too) and as strings otherwise, so variants of one method can be compared in the same run.
    """
    match = _SPEC.match(spec)
    if not match:
        raise InvalidParameterError(f"method spec {spec!r} is not NAME or NAME[key=value,...]")
    name, body = match.group(1), match.group(2)
    params: dict[str, Any] = {}
    for item in split_method_specs(body or ""):  # a value may be a spec list with its own [...]
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise InvalidParameterError(f"method spec {spec!r}: {item!r} is not key=value")
        params[key.strip()] = _spec_value(value.strip())
    method_class(name)().set_params(**params)  # unknown name or parameter: fail now, not mid-run
    return name, params


def _spec_value(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def seeded_method(spec: str, random_state: int):
    """A new unfitted method from a spec, seeded with ``random_state`` when it takes a
    seed and the spec sets none: the members of a composed method share its seed."""
    name, params = parse_method_spec(spec)
    method = make_method(name, **params)
    if "random_state" in method.get_params() and "random_state" not in params:
        method.set_params(random_state=random_state)
    return method


def split_method_specs(text: str, separator: str = ",") -> list[str]:
    """Split a list of specs at ``separator`` (one character), keeping those inside ``[...]``."""
    specs, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == separator and depth == 0:
            specs.append(current.strip())
            current = ""
        else:
            current += char
    return [s for s in [*specs, current.strip()] if s]
