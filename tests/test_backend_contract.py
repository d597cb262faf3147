"""The backend contract, checked on every registered backend (``topicsent.backends``
entry points), as tests/test_contract.py checks every method: a plug-in that breaks it
fails here, not in a user's run."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from topicsent.errors import InvalidParameterError
from topicsent.llm import Backend, backend_names, make_backend

#: How to build each registered backend without a call: (model, options). The tiny
#: packaged SmolLM2 is what the tests' llama.cpp server serves too.
CONTRACT_MODELS: dict[str, tuple[str, dict]] = {
    "openai": ("gpt-4o-mini", {"base_url": "http://127.0.0.1:9/v1"}),
    "llamacpp": ("smollm2-135m-instruct", {}),
    "transformers": ("smollm2-135m-instruct", {}),
}


@pytest.fixture(params=backend_names())
def name(request) -> str:
    if request.param not in CONTRACT_MODELS:
        pytest.fail(f"backend {request.param!r} is registered but has no entry in CONTRACT_MODELS")
    return request.param


def test_backend_class_follows_the_contract(name):
    model, options = CONTRACT_MODELS[name]
    backend = make_backend(name, model, **options)
    cls = type(backend)
    assert isinstance(backend, Backend) and cls.name == name and isinstance(cls.local, bool)
    assert inspect.iscoroutinefunction(cls.complete) and inspect.iscoroutinefunction(cls.aclose)
    parameters = list(inspect.signature(cls).parameters.values())
    assert parameters[0].name == "model" and all(p.kind is p.KEYWORD_ONLY for p in parameters[1:]), "options are keyword-only"
    assert backend.model == model and isinstance(backend.model_id, str) and backend.model_id
    assert cls.parallel_requests is None or cls.parallel_requests >= 1
    asyncio.run(backend.aclose())  # releasing an unused backend is harmless


def test_an_unknown_option_is_a_user_error_naming_the_backend(name):
    model, options = CONTRACT_MODELS[name]
    with pytest.raises(InvalidParameterError, match=rf"backend {name!r}: .*no_such_option"):
        make_backend(name, model, **options, no_such_option=1)


def test_a_bug_inside_a_backend_constructor_is_not_called_a_user_error(monkeypatch):
    """Only a call that does not fit the signature is the user's; a TypeError raised
    inside the constructor propagates as it is (it used to become InvalidParameterError)."""
    from topicsent.llm import OpenAIBackend

    def broken(self, model, *, base_url=None):
        raise TypeError("internal bug")

    monkeypatch.setattr(OpenAIBackend, "__init__", broken)
    with pytest.raises(TypeError, match="internal bug") as caught:
        make_backend("openai", "gpt-4o-mini")
    assert not isinstance(caught.value, InvalidParameterError)
