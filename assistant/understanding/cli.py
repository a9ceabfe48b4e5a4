"""``kefu intents …``: train and try the fast intent classifier."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def train(
    ctx: typer.Context,
    per_label: int = typer.Option(150, min=2, help="Training utterances per intent."),
    epochs: int = typer.Option(1, min=1),
    holdout: str = typer.Option("utterance", help="Held-out split: utterance or register (see intent_data)."),
    out: Path | None = typer.Option(None, help="Model folder (default: <data dir>/models/intents)."),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Fine-tune the packaged MiniLM on Bitext + CLINC150 (a few minutes on 2 cores) and score held-out
    splits."""
    from rich.progress import Progress

    from assistant.understanding.intents import TrainConfig
    from assistant.understanding.intents import train as train_model
    from kefu.console import console, print_json, settings_of
    from kefu.errors import IntentError

    if holdout not in {"utterance", "register"}:
        raise IntentError(f"Unknown --holdout {holdout!r}; use utterance or register.")
    config = TrainConfig(per_label=per_label, epochs=epochs, holdout=holdout, seed=seed)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("training", total=None)

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(task, completed=step, total=total, description=f"training (loss {loss:.3f})")

        manifest = train_model(settings_of(ctx), config, out_dir=out, on_step=on_step)
    if as_json:
        print_json(manifest)
        return
    training = manifest["training"]
    console.print(f"trained on {training['rows']} utterances in {training['seconds']} s")
    for name, metrics in manifest["metrics"].items():
        console.print(
            f"{name}: n={metrics['n']} accuracy={metrics['accuracy']} macro_f1={metrics['macro_f1']} "
            f"({metrics['ms_per_utterance']} ms/utterance)"
        )


@app.command()
def predict(
    ctx: typer.Context,
    texts: list[str] = typer.Argument(..., help="Utterances to classify."),
    top: int = typer.Option(3, min=1, help="Intents per utterance."),
    model_dir: Path | None = typer.Option(None, "--model-dir", help="Model folder (default: data dir)."),
) -> None:
    """Print the most likely intents of each utterance as JSON."""
    from assistant.understanding.intents import IntentClassifier
    from kefu.console import print_json, settings_of

    classifier = IntentClassifier.load(settings_of(ctx), model_dir)
    print_json(
        [
            {"text": text, "intents": [{"intent": label, "probability": prob} for label, prob in ranked]}
            for text, ranked in zip(texts, classifier.predict_top(texts, k=top), strict=True)
        ]
    )
