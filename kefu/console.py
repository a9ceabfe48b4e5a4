"""What every package's CLI sub-app shares: the stderr console, JSON on stdout, the settings built at the root."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from kefu.errors import KefuError
from kefu.settings import Settings

console = Console(stderr=True)


def build_settings(ctx: typer.Context) -> None:
    """The root callback of a command group: build the one Settings object for this invocation (``settings_of``)."""
    try:
        ctx.obj = Settings()
    except ValidationError as exc:
        raise KefuError(f"Invalid settings (KEFU_* environment or kefu.toml): {exc}") from exc


def settings_of(ctx: typer.Context) -> Settings:
    """The one Settings object the ``kefu`` root command built for this invocation."""
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
