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

from topicsent._extras import extras_needed
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
    with extras_needed(f"method {name!r}"):
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


_OPENING, _CLOSING = "[{(", "]})"


def split_method_specs(text: str, separator: str = ",") -> list[str]:
    """Split a list of specs at ``separator`` (one character), keeping those nested in
    ``[...]``, ``{...}`` or ``(...)`` or inside a quoted string: a value such as
    ``backend_options={"a": 1, "b": 2}`` stays whole."""
    specs, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote and not current.endswith("\\") else quote
        elif char in "\"'":
            quote = char
        elif char in _OPENING:
            depth += 1
        elif char in _CLOSING:
            depth -= 1
        if char == separator and depth == 0 and not quote:
            specs.append(current.strip())
            current = ""
        else:
            current += char
    return [s for s in [*specs, current.strip()] if s]


def parse_methods(text: str, separator: str = ",", *, random_state: int | None = None) -> list:
    """Method objects from a spec list, parsed once where text enters (the CLI):
    ``"tfidf-lr,embed-head[design=pair]"`` -> ``[TfidfLRMethod(), EmbedHeadMethod(design='pair')]``.
    With ``random_state``, methods that take a seed and whose spec sets none get it.

    Raises
    ------
    InvalidParameterError : a spec that is not ``NAME[key=value,...]``, or an unknown parameter.
    UnknownNameError : an unregistered method name.
    """
    if random_state is None:
        return [make_method(name, **params) for name, params in map(parse_method_spec, split_method_specs(text, separator))]
    return [seeded_method(spec, random_state) for spec in split_method_specs(text, separator)]


def method_spec(method) -> str:
    """The spec of a method object, ``NAME[key=value,...]`` with the parameters that
    differ from the class defaults; :func:`parse_method_spec` reads it back to equal
    parameters (``parse_method_spec(method_spec(m))`` gives ``m``'s name and those)."""
    defaults = type(method)().get_params()
    changed = {k: v for k, v in method.get_params().items() if k not in defaults or v != defaults[k]}
    items = [f"{key}={_spec_text(value)}" for key, value in changed.items()]
    return method.name + (f"[{','.join(items)}]" if items else "")


def _spec_text(value: Any) -> str:
    """A parameter value as spec text that :func:`_spec_value` reads back unchanged."""
    if hasattr(value, "get_params"):
        return method_spec(value)
    if isinstance(value, list) and value and all(hasattr(v, "get_params") for v in value):
        return "[" + ",".join(method_spec(v) for v in value) + "]"
    if isinstance(value, str) and _spec_value(value) == value and not set(value) & set(",[]{}()\"'="):
        return value
    return json.dumps(value, ensure_ascii=False)
