"""``python -m kefu.llm serve|wait|status|stop|prepare``: the ``kefu llm`` commands without loading every other
package the ``kefu`` command gathers (a few seconds against ~25 s on a busy 2-core machine), so that ``make demo``
launches vLLM first thing."""

from __future__ import annotations

import typer

from kefu.console import build_settings, console
from kefu.errors import KefuError
from kefu.llm.cli import app as llm_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Kefu's LLM commands (as `kefu llm`).")
app.registered_commands.extend(llm_app.registered_commands)


app.callback()(build_settings)


def main() -> None:
    try:
        app(prog_name="python -m kefu.llm")
    except KefuError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
