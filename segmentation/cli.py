"""``kefu segment …``: fit segments, show a customer's profile, reports, RFM for analysts."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
