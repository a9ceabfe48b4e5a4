"""A tiny interface to the served model over the OpenAI-compatible API (vLLM or any compatible server).

Four operations: ``chat`` (one reply), ``stream`` (reply chunks), ``structured`` (a validated pydantic object
from a JSON-schema constrained request) and ``tool_calls`` (the model picks tools). Every failure of the server
— unreachable, timing out, or answering with something unusable — becomes one error type, ``LLMError``,
whose message says how to get a server running.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import openai
from pydantic import BaseModel, ValidationError

from kefu.errors import LLMError
from kefu.settings import Settings

T = TypeVar("T", bound=BaseModel)

HOW_TO_START = "start it with `kefu llm serve` or set KEFU_LLM_URL to a running OpenAI-compatible server"

Message = dict[str, Any]  # {"role": "system"|"user"|"assistant"|"tool", "content": str, ...}


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage | Any) -> None:
        """Count another request's usage (a Usage or the OpenAI object) into this one."""
        self.prompt_tokens += getattr(other, "prompt_tokens", 0) or 0
        self.completion_tokens += getattr(other, "completion_tokens", 0) or 0


@dataclass
class Reply:
    text: str
    usage: Usage = field(default_factory=Usage)


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = ""


class LLM:
    """Client for one served model. Cheap to create; thread-safe (the underlying httpx client is)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "EMPTY",
        timeout_s: float = 120.0,
        retries: int = 2,
        temperature: float = 0.2,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.temperature = temperature
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=retries)

    @classmethod
    def from_settings(cls, settings: Settings) -> LLM:
        return cls(
            settings.llm_base_url,
            settings.served_name,
            api_key=settings.llm_api_key,
            timeout_s=settings.llm_timeout_s,
            retries=settings.llm_retries,
            temperature=settings.llm_temperature,
        )

    # -- the four operations -------------------------------------------------------------------------
    def chat(self, messages: list[Message], *, max_tokens: int = 256, **extra: Any) -> Reply:
        response = self._create(messages=messages, max_tokens=max_tokens, **extra)
        choice = self._first_choice(response)
        return Reply(text=choice.message.content or "", usage=self._usage(response))

    def stream(
        self, messages: list[Message], *, max_tokens: int = 256, usage: Usage | None = None, **extra: Any
    ) -> Iterator[str]:
        """Yield text chunks as the server produces them; with ``usage``, the server's token counts are added to
        it when the stream ends."""
        if usage is not None:
            extra["stream_options"] = {"include_usage": True}
        chunks = self._create(messages=messages, max_tokens=max_tokens, stream=True, **extra)
        try:
            for chunk in chunks:
                if usage is not None and getattr(chunk, "usage", None) is not None:
                    usage.add(chunk.usage)
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except openai.APIError as exc:
            raise self._error(exc) from exc
        except json.JSONDecodeError as exc:
            raise LLMError(
                f"The LLM server at {self.base_url} streamed something that is not JSON ({exc.msg})."
            ) from exc
        except httpx.HTTPError as exc:  # the server died mid-stream: the SDK does not wrap errors while iterating
            raise LLMError(
                f"The LLM server at {self.base_url} stopped mid-answer ({type(exc).__name__}); "
                "restart it with `kefu llm serve`."
            ) from exc

    def structured(
        self,
        messages: list[Message],
        schema: type[T],
        *,
        max_tokens: int = 512,
        usage: Usage | None = None,
        **extra: Any,
    ) -> T:
        """Ask for JSON constrained by ``schema``'s JSON schema and return the validated object (with ``usage``,
        the request's token counts are added to it)."""
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(), "strict": True},
        }
        reply = self.chat(messages, max_tokens=max_tokens, response_format=response_format, **extra)
        if usage is not None:
            usage.add(reply.usage)
        try:
            return schema.model_validate_json(reply.text)
        except ValidationError as exc:
            raise LLMError(
                f"The model at {self.base_url} returned output that does not match {schema.__name__} "
                f"({exc.error_count()} errors; first: {exc.errors()[0]['msg']}). Check that the server supports "
                "structured outputs (vLLM does) and that max_tokens is large enough."
            ) from exc

    def tool_calls(
        self, messages: list[Message], tools: list[dict[str, Any]], *, tool_choice: Any = "auto", **extra: Any
    ) -> tuple[list[ToolCall], Reply]:
        """Let the model choose tools. Returns the calls (arguments parsed) and any text it wrote."""
        response = self._create(messages=messages, tools=tools, tool_choice=tool_choice, **extra)
        message = self._first_choice(response).message
        calls = [
            ToolCall(name=c.function.name, arguments=_parse_arguments(c.function.arguments), id=c.id)
            for c in (message.tool_calls or [])
        ]
        return calls, Reply(text=message.content or "", usage=self._usage(response))

    def models(self) -> list[str]:
        """Names of the models the server serves (a cheap health check)."""
        try:
            return [m.id for m in self._client.models.list().data]
        except openai.APIError as exc:
            raise self._error(exc) from exc

    # -- plumbing -------------------------------------------------------------------------------------
    def _create(self, **kwargs: Any) -> Any:
        kwargs.setdefault("temperature", self.temperature)
        try:
            return self._client.chat.completions.create(model=self.model, **kwargs)
        except openai.APIError as exc:
            raise self._error(exc) from exc
        except json.JSONDecodeError as exc:  # the SDK parses the body itself
            raise LLMError(
                f"The LLM server at {self.base_url} answered with something that is not JSON "
                f"({exc.msg}); is KEFU_LLM_URL pointing at an OpenAI-compatible /v1 endpoint?"
            ) from exc

    def _first_choice(self, response: Any) -> Any:
        choices = getattr(response, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise LLMError(f"The LLM server at {self.base_url} returned a reply with no message; {HOW_TO_START}.")
        return choices[0]

    @staticmethod
    def _usage(response: Any) -> Usage:
        usage = getattr(response, "usage", None)
        if usage is None:
            return Usage()
        return Usage(prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0)

    def _error(self, exc: openai.APIError) -> LLMError:
        if isinstance(exc, openai.APIConnectionError | openai.APITimeoutError):
            return LLMError(f"Cannot reach the LLM server at {self.base_url} ({type(exc).__name__}); {HOW_TO_START}.")
        if isinstance(exc, openai.NotFoundError):
            return LLMError(
                f"The LLM server at {self.base_url} does not serve model {self.model!r} (or the URL lacks /v1); "
                "set KEFU_LLM_SERVED_NAME to a name from its /v1/models."
            )
        if isinstance(exc, openai.APIStatusError):
            return LLMError(f"The LLM server at {self.base_url} answered HTTP {exc.status_code}: {_short(exc.message)}")
        return LLMError(
            f"The LLM server at {self.base_url} returned an unusable response ({_short(str(exc))}); {HOW_TO_START}."
        )


def _parse_arguments(raw: str | None) -> dict[str, Any]:
    """Tool arguments arrive as a JSON string; small models sometimes send a bare string instead."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": value}


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
