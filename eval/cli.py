"""``kefu eval …``: offline evaluation commands, each printing JSON with --json."""

from __future__ import annotations

import typer

from eval.clv import clv_command
from eval.intents import intents_command
from eval.retrieval import retrieval_command

app = typer.Typer(no_args_is_help=True)
app.command("clv")(clv_command)
app.command("intents")(intents_command)
app.command("retrieval")(retrieval_command)
