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


def seeded_method(spec, random_state: int):
    """A new unfitted method from a spec or a method object (cloned, never fitted in
    place), seeded with ``random_state`` when it takes a seed and the spec sets none (an
    object: keeps its class's default): the members of a composed method share its seed."""
    if isinstance(spec, str):
        name, given = parse_method_spec(spec)
        method = make_method(name, **given)
    else:
        method, given = spec.clone(), changed_params(spec)
    if "random_state" in method.get_params() and "random_state" not in given:
        method.set_params(random_state=random_state)
    return method


def method_list(value, separator: str, *, owner: str, items: str) -> list:
    """The methods of a composed method's list parameter, as given: spec text split at
    ``separator`` (outside brackets, ``"tfidf-lr>llm"``) or a sequence of specs and
    method objects. Each item stays a spec string or a method object; ``owner`` and
    ``items`` name them in errors ("a cascade", "stages").

    Raises
    ------
    InvalidParameterError : fewer than two items, or an item that is neither.
    """
    if not isinstance(value, str | list | tuple):
        raise InvalidParameterError(f"{owner}: {items} must be spec text or a list of methods; got {value!r}")
    found = split_method_specs(value, separator) if isinstance(value, str) else list(value)
    if len(found) < 2 or any(isinstance(i, str) and not i.strip() for i in found):
        raise InvalidParameterError(f"{owner} needs at least two {items} separated by '{separator}'; got {value!r}")
    if bad := [i for i in found if not isinstance(i, str) and not hasattr(i, "get_params")]:
        raise InvalidParameterError(f"{owner}: {bad[0]!r} is neither a method spec nor a method")
    return [i.strip() if isinstance(i, str) else i for i in found]


def item_spec(item) -> str:
    """A spec string or method object as spec text."""
    return item if isinstance(item, str) else method_spec(item)


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
    written = spec_params(method)
    items = [f"{key}={_spec_text(written[key])}" for key in changed_params(method)]
    return method.name + (f"[{','.join(items)}]" if items else "")


def changed_params(method) -> dict[str, Any]:
    """The parameters of a method object that differ from its class's defaults."""
    defaults = type(method)().get_params()
    return {k: v for k, v in method.get_params().items() if k not in defaults or v != defaults[k]}


def spec_params(method) -> dict[str, Any]:
    """``method.get_params()`` with nested methods written as the spec text the class
    also accepts (its ``nested_methods`` parameter -> separator): a cascade's stages
    ``[TfidfLRMethod(), MajorityMethod()]`` -> ``"tfidf-lr>majority"``. How a composed
    method's parameters go into JSON (a saved model's config, a run's results)."""
    separators = getattr(method, "nested_methods", {})
    params = method.get_params()
    for key, separator in separators.items():
        if not isinstance(params[key], str):
            params[key] = separator.join(map(item_spec, params[key]))
    return params


def _spec_text(value: Any) -> str:
    """A parameter value as spec text that :func:`_spec_value` reads back unchanged."""
    if hasattr(value, "get_params"):
        return method_spec(value)
    if isinstance(value, list) and value and all(hasattr(v, "get_params") for v in value):
        return "[" + ",".join(method_spec(v) for v in value) + "]"
    if isinstance(value, str) and _spec_value(value) == value and not set(value) & set(",[]{}()\"'="):
        return value
    return json.dumps(value, ensure_ascii=False)
