"""Any OpenAI-compatible chat-completions endpoint over HTTP.

OpenAI itself, vLLM, llama.cpp's server, Ollama, LM Studio and Gemini's
OpenAI-compatible endpoint all speak this. They differ in structured output: OpenAI
and vLLM take ``{"type": "json_schema"}``; llama.cpp's server rejects that (HTTP 500)
but takes ``{"type": "json_object", "schema": ...}``. With ``schema_mode="auto"`` the
backend tries the standard form first and, if the server refuses it before ever
accepting it, switches to the llama.cpp form for the rest of the session.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from topicsent.errors import BackendError, InvalidParameterError
from topicsent.llm._backend import Backend, ChatRequest, RawCompletion

SCHEMA_MODES = ("auto", "json_schema", "json_object", "none")
BASE_URL_ENV = "OPENAI_BASE_URL"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SCHEMA_REFUSALS = (400, 422, 500, 501)  # how servers without json_schema support refuse it


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120.0,
        schema_mode: str = "auto",
    ) -> None:
        super().__init__(model)
        if schema_mode not in SCHEMA_MODES:
            raise InvalidParameterError(f"schema_mode must be one of {', '.join(SCHEMA_MODES)}, got {schema_mode!r}")
        self.base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self.local = httpx.URL(self.base_url).host in LOOPBACK
        api_key = os.environ.get(api_key_env)
        if not api_key and not self.local:
            raise InvalidParameterError(f"set the API key of {self.base_url} in ${api_key_env} (or name another variable)")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None  # made in the event loop that uses it
        self.schema_mode = schema_mode
        self._schema_confirmed = schema_mode != "auto"

    @property
    def model_id(self) -> str:
        return f"{self.base_url}|{self.model}"

    def _response_format(self, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None or self.schema_mode == "none":
            return None
        if self.schema_mode == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}

    async def complete(self, request: ChatRequest) -> RawCompletion:
        try:
            return await self._post(request)
        except BackendError as error:
            if self._schema_confirmed or request.schema is None or error.status not in SCHEMA_REFUSALS:
                raise
            self.schema_mode, self._schema_confirmed = "json_object", True  # the server refused json_schema
            return await self._post(request)

    async def _post(self, request: ChatRequest) -> RawCompletion:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.message_dicts,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        response_format = self._response_format(request.schema)
        if response_format:
            body["response_format"] = response_format
        try:
            response = await self._http().post("/chat/completions", json=body)
        except httpx.TimeoutException as error:
            raise BackendError(f"timed out: {type(error).__name__}", retryable=True) from None
        except httpx.TransportError as error:
            raise BackendError(f"connection failed: {type(error).__name__}: {error}", retryable=True) from None
        if response.status_code != 200:
            raise _status_error(response)
        self._schema_confirmed = True
        return _completion(response)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, headers=self._headers, timeout=self.timeout)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _status_error(response: httpx.Response) -> BackendError:
    retryable = response.status_code in (408, 409, 429) or response.status_code >= 500
    retry_after = response.headers.get("retry-after")
    try:
        seconds = float(retry_after) if retry_after is not None else None
    except ValueError:
        seconds = None
    return BackendError(
        f"HTTP {response.status_code}: {response.text[:300]}",
        retryable=retryable,
        retry_after=seconds,
        status=response.status_code,
    )


def _completion(response: httpx.Response) -> RawCompletion:
    """The text and token counts of a 200 response; a body without them is a
    retryable error (a proxy or server hiccup), not an answer."""
    try:
        data = response.json()
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise BackendError(f"malformed response body: {response.text[:200]!r}", retryable=True) from None
    usage = data.get("usage") or {}
    return RawCompletion(
        text=text or "",
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
    )
