"""Tools: typed Python functions with docstrings. Each tool's JSON schema is derived from its signature, so it is
written once. A tool's first parameter is the per-session ``Deps``; the model never supplies it (nor the
customer id, which lives in Deps). Errors the model caused (bad arguments, unknown ids) come back as
``ToolError`` text the model can act on; anything else is a bug and raises.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from assistant.errors import KefuError


class ToolError(KefuError):
    """A tool call the model got wrong; the message goes back to the model as text."""


@dataclass
class ToolResult:
    ok: bool
    value: Any
    text: str  # what the model reads
    product_ids: list[str]
    latency_ms: float


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    fn: Callable[..., Any]
    arguments: type[BaseModel]

    def schema(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool."""
        params = self.arguments.model_json_schema()
        params.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }


def tool(fn: Callable[..., Any]) -> Tool:
    """Make a Tool of ``fn(deps, **arguments)``; every argument needs a type hint and the function a docstring."""
    doc = inspect.getdoc(fn)
    if not doc:
        raise TypeError(f"tool {fn.__name__} needs a docstring: it is the model's description of the tool")
    params = list(inspect.signature(fn).parameters.values())[1:]  # the first is Deps
    hints = inspect.get_annotations(fn, eval_str=True)
    fields: dict[str, Any] = {}
    for p in params:
        if p.name not in hints:
            raise TypeError(f"tool {fn.__name__}: argument {p.name!r} needs a type hint")
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hints[p.name], default)
    model = create_model(f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
    return Tool(fn.__name__, doc.split("\n\n")[0].replace("\n", " "), fn, model)


def run_tool(t: Tool, deps: Any, arguments: dict[str, Any]) -> ToolResult:
    """Validate the arguments and call the tool. Model mistakes become a failed ToolResult, bugs raise."""
    start = time.perf_counter()
    try:
        args = t.arguments.model_validate(arguments)
        value = t.fn(deps, **args.model_dump())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
        return ToolResult(False, None, f"Invalid arguments for {t.name}: {problems}", [], _ms(start))
    except KefuError as exc:  # ToolError, SearchQueryError, FilterError, StoreError: fixable by the caller
        return ToolResult(False, None, f"{t.name} failed: {exc}", [], _ms(start))
    ids = [p.product_id for p in getattr(value, "products", [])]
    text = value.as_text() if hasattr(value, "as_text") else str(value)
    return ToolResult(True, value, text, ids, _ms(start))


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
