"""``kefu chat`` (terminal chat, streamed; or one turn as JSON) and ``kefu token`` (a demo session token)."""

from __future__ import annotations

import typer
from rich.console import Console

from assistant.events import Products, Refused, TextChunk, ToolCalled, TurnDone, Understood
from assistant.session import Session
from kefu.console import console, print_json, settings_of


def chat(
    ctx: typer.Context,
    message: str = typer.Argument(None, help="One message; with --json, answer it and exit."),
    customer: str = typer.Option(None, "--customer", help="Chat as this customer (default: guest)."),
    as_json: bool = typer.Option(False, "--json", help="One turn, JSON out."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show understanding and tool calls."),
) -> None:
    """Chat with the shopping assistant in the terminal."""
    from assistant.factory import build_assistant

    settings = settings_of(ctx)
    assistant = build_assistant(settings)
    session = Session(customer_id=customer)
    if as_json:
        if not message:
            raise typer.BadParameter("--json needs a message argument")
        print_json(turn_summary(list(assistant.turn(session, message))))
        return
    out = Console()
    out.print(f"[bold]Kefu[/bold] — chatting as {'customer ' + customer if customer else 'a guest'}. Ctrl-D quits.")
    pending = [message] if message else []
    while True:
        try:
            text = pending.pop() if pending else out.input("[bold cyan]you>[/bold cyan] ")
        except (EOFError, KeyboardInterrupt):
            out.print()
            return
        out.print("[bold green]kefu>[/bold green] ", end="")
        for event in assistant.turn(session, text):
            if isinstance(event, TextChunk):
                out.print(event.text, end="", markup=False, highlight=False)
            elif isinstance(event, Refused):
                out.print(event.message, end="")
            elif verbose and isinstance(event, Understood):
                console.print(f"[dim]{event.understanding.model_dump_json(exclude_defaults=True)}[/dim]")
            elif verbose and isinstance(event, ToolCalled):
                console.print(f"[dim]tool {event.name}({event.arguments}) ok={event.ok} {event.latency_ms} ms[/dim]")
        out.print()


def turn_summary(events: list) -> dict:
    """One turn's events as the JSON `kefu chat --json` prints."""
    done = next(e for e in events if isinstance(e, TurnDone))
    understood = next((e for e in events if isinstance(e, Understood)), None)
    products = next((e.items for e in events if isinstance(e, Products)), [])
    return {
        "conversation_id": done.conversation_id,
        "intent": understood.understanding.intent if understood else None,
        "stage": understood.understanding.stage if understood else None,
        "slots": understood.understanding.slots.model_dump(exclude_defaults=True) if understood else {},
        "understanding_source": understood.source if understood else None,
        "tools": [
            {
                "name": e.name,
                "arguments": e.arguments,
                "ok": e.ok,
                "product_ids": e.product_ids,
                "latency_ms": e.latency_ms,
            }
            for e in events
            if isinstance(e, ToolCalled)
        ],
        "products": [p.model_dump(include={"product_id", "title", "price", "reason"}) for p in products],
        "reply": done.reply,
        "refused": next((e.reason for e in events if isinstance(e, Refused)), None),
        "repairs": done.repairs,
        "handoff_case": done.handoff_case,
        "timings_ms": done.timings_ms,
    }


def token(ctx: typer.Context, customer: str = typer.Argument(..., help="Customer id")) -> None:
    """Print a session token for CUSTOMER (`Authorization: Bearer <token>`; expires after KEFU_SESSION_TOKEN_TTL_S)."""
    from ui.auth import Tokens

    print(Tokens.from_settings(settings_of(ctx)).issue(customer))
