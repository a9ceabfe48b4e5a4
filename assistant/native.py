"""Native planning (``KEFU_PLANNER=native``, for capable models): a bounded tool-calling loop. The model calls
tools through the server's tool calling, sees each result (or the error text) as a ``tool`` message, and may
call again, up to ``max_steps`` rounds; it ends when the model calls no tool, or after a round whose results read
like an injection attempt (shop data the model would otherwise act on). It never starts on a shopper message
flagged as one (``assistant/loop.py``). The structured plan does not run first; it is the fallback only when the
server is down (the loop catches ``LLMError``). Everything the model reads besides the system prompt is fenced
or defanged (``guardrails.defang``): no chat-template token in shop data or a message becomes a turn marker.

The 135M model never calls a tool with ``tool_choice="auto"`` (measured 2026-11-28: README, "Measured
figures"); ``required`` forces one on the first round only, so a forced model cannot loop. Measured 2026-12-01
with the eleven tool schemas and their argument descriptions: forced, SmolLM2-135M wrote a malformed
``<tool_call>`` that looped to the token limit; when a forced round yields no call, the loop lets the structured
plan carry the turn.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

from assistant.guardrails import defang, fence, looks_like_injection
from assistant.tools import Tool, ToolResult
from kefu.llm.client import LLM, Usage

MAX_CALLS_PER_ROUND = 3
MAX_TOKENS = 200  # per round; a small model may otherwise ramble up to the context limit
FORCED_MAX_TOKENS = 300  # a valid call of these tools is under 100 tokens; past that the model is looping


def system_prompt() -> str:
    return resources.files("assistant").joinpath("prompts/native_system.md").read_text()


def native_calls(
    llm: LLM,
    history: list[dict[str, Any]],
    message: str,
    tools: dict[str, Tool],
    run: Callable[[str, dict[str, Any]], ToolResult],
    *,
    max_steps: int,
    tool_choice: str,
    usage: Usage,
) -> Iterator[tuple[str, dict[str, Any], ToolResult]]:
    """Yield (tool name, arguments, result) for every call the model makes, in order."""
    specs = [t.schema() for t in tools.values()]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt()},
        *history,
        {"role": "user", "content": defang(message)},
    ]
    for step in range(max_steps):
        choice = tool_choice if step == 0 else "auto"
        budget = FORCED_MAX_TOKENS if choice == "required" else MAX_TOKENS
        calls, reply = llm.tool_calls(messages, specs, tool_choice=choice, temperature=0, max_tokens=budget)
        usage.add(reply.usage)
        calls = calls[:MAX_CALLS_PER_ROUND]
        if not calls:
            return
        ids = [c.id or f"call_{step}_{i}" for i, c in enumerate(calls)]
        messages.append({
            "role": "assistant",
            "content": reply.text or "",
            "tool_calls": [
                {"id": i, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for i, c in zip(ids, calls, strict=True)
            ],
        })  # fmt: skip
        flagged = False
        for call_id, call in zip(ids, calls, strict=True):
            result = run(call.name, call.arguments)
            yield call.name, call.arguments, result
            messages.append({"role": "tool", "tool_call_id": call_id, "content": fence(call.name, result.text)})
            flagged |= looks_like_injection(result.text)
        if flagged:  # shop data that reads like an instruction: the model chooses no further tool this turn
            return
