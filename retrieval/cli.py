"""``kefu index`` and ``kefu search``: build the product indexes, search them."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the retrieval commands to the root ``kefu`` app."""
