"""Tools: typed Python functions with Google-style docstrings, made into langchain-core ``StructuredTool``s.

The schema the model sees, including each argument's description from the docstring's ``Args:``, comes from
the signature and docstring (``parse_docstring=True``); the OpenAI ``tools`` entry is langchain-core's
``convert_to_openai_tool``. A tool's first parameter is the per-session ``Deps``, marked ``InjectedToolArg``
so the model never supplies it (nor the customer id, which lives in Deps). Errors the model caused (bad
arguments, unknown ids) come back as a failed ``ToolResult`` whose text the model can act on; anything else is
a bug and raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ValidationError, create_model

from kefu.errors import KefuError


class ToolError(KefuError):
    """A tool call the model got wrong; the message goes back to the model as text."""


class ToolOutput(BaseModel):
    """What a tool returns: ``text`` is what the model reads; ``data`` is the typed result the loop, UI, log
    and eval use (a case id, an order, a return id: ``assistant/tool_data.py``); ``products`` are shown as cards."""

    text: str
    data: BaseModel | None = None
    products: list[Any] = []  # list[ProductCard]; Any keeps this module free of the event types

    def data_dict(self) -> dict[str, Any]:
        """``data`` as JSON-ready fields (what ``ToolCalled.data`` carries)."""
        return self.data.model_dump(mode="json") if self.data is not None else {}


@dataclass
class ToolResult:
    ok: bool
    output: ToolOutput | None
    text: str  # what the model reads (the error text when not ok)
    latency_ms: float
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def products(self) -> list[Any]:
        return self.output.products if self.output else []


@dataclass(frozen=True)
class Tool:
    name: str
    lc: StructuredTool  # the langchain-core tool: schema, description, argument descriptions
    arguments: type[BaseModel]  # the model-facing arguments (without Deps), unknown ones refused

    @property
    def description(self) -> str:
        return self.lc.description

    def schema(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool (injected arguments left out)."""
        return convert_to_openai_tool(self.lc)


def tool(fn: Callable[..., ToolOutput]) -> Tool:
    """Make a Tool of ``fn(deps, **arguments)``; every argument needs a type hint and an ``Args:`` line."""
    if not fn.__doc__:
        raise TypeError(f"tool {fn.__name__} needs a docstring: it is the model's description of the tool")
    lc = StructuredTool.from_function(fn, parse_docstring=True)
    undocumented = [name for name, f in lc.tool_call_schema.model_fields.items() if not f.description]
    if undocumented:
        raise TypeError(f"tool {fn.__name__}: describe {', '.join(undocumented)} in the docstring's Args: section")
    strict = create_model(f"{fn.__name__}_arguments", __base__=lc.tool_call_schema, __config__=None)
    strict.model_config["extra"] = "forbid"
    strict.model_rebuild(force=True)
    return Tool(fn.__name__, lc, strict)


def run_tool(t: Tool, deps: Any, arguments: dict[str, Any]) -> ToolResult:
    """Validate the arguments and call the tool. Model mistakes become a failed ToolResult, bugs raise."""
    start = time.perf_counter()
    schema = t.arguments
    try:
        args = schema.model_validate(arguments)
        output = t.lc.func(deps, **{name: getattr(args, name) for name in schema.model_fields})
    except ValidationError as exc:
        problems = "; ".join(_problem(e, schema) for e in exc.errors())
        return ToolResult(False, None, f"Invalid arguments for {t.name}: {problems}", _ms(start))
    except KefuError as exc:  # ToolError, SearchQueryError, FilterError, StoreError: fixable by the caller
        return ToolResult(False, None, f"{t.name} failed: {exc}", _ms(start))
    if not isinstance(output, ToolOutput):
        raise TypeError(f"tool {t.name} returned {type(output).__name__}, not ToolOutput")
    return ToolResult(True, output, output.text, _ms(start), output.data_dict())


def _problem(error: dict[str, Any], schema: type[BaseModel]) -> str:
    """One validation problem, naming only the tool's own argument names (never a key or value the model made up)."""
    loc, fields = error["loc"], schema.model_fields
    if error["type"] == "extra_forbidden":
        return "an argument this tool does not take"
    if not loc or loc[0] not in fields:
        return f"arguments: {error['msg']}"
    where = ".".join(str(part) for part in loc if isinstance(part, int) or part in fields)
    return f"{where}: {error['msg']}"


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
