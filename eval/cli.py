"""``kefu eval …``: offline evaluation commands, each printing one JSON object with --json."""

from __future__ import annotations

import typer

from eval.cases import cases_command
from eval.clv import clv_command
from eval.dialogues import dialogues_command
from eval.intents import intents_command
from eval.logs import logs_command
from eval.match import match_command
from eval.recommend import recommend_command
from eval.report import report_command
from eval.retrieval import retrieval_command
from eval.scope import scope_command
from eval.simulate import simulate_command
from eval.understanding import understanding_command

app = typer.Typer(no_args_is_help=True)
app.command("cases")(cases_command)
app.command("clv")(clv_command)
app.command("dialogues")(dialogues_command)
app.command("intents")(intents_command)
app.command("logs")(logs_command)
app.command("match")(match_command)
app.command("recommend")(recommend_command)
app.command("report")(report_command)
app.command("retrieval")(retrieval_command)
app.command("scope")(scope_command)
app.command("simulate")(simulate_command)
app.command("understanding")(understanding_command)
