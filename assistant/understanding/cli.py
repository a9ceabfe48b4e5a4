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


DEV_SET = Path(__file__).resolve().parents[2] / "eval" / "cases" / "understanding" / "dev.jsonl"


def tune(
    ctx: typer.Context,
    examples: int = typer.Option(2400, min=8, help="Training examples to generate."),
    steps: int = typer.Option(120, min=1, help="Optimizer steps (the cap on the run's time)."),
    batch: int = typer.Option(12, min=1),
    exclude: list[Path] = typer.Option(
        [DEV_SET], "--exclude", help="Development sets (JSON Lines with a message) whose turns are never trained on."
    ),
    seed: int = typer.Option(0),
    force: bool = typer.Option(False, help="Tune again even when the cached model is current."),
    if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing when a tuned model exists (make demo)."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Fine-tune the served model (LoRA on the CPU, merged) to read a shopper's turn as the reading's JSON, from
    the shop's catalogue, needs and the public training splits; `kefu llm serve` then serves it."""
    import json

    from rich.progress import Progress

    from assistant.understanding.tune_data import build, catalogue_phrases
    from kefu.console import console, print_json, settings_of
    from kefu.errors import KefuError
    from kefu.llm import tune as tuner
    from kefu.store import connect

    settings = settings_of(ctx)
    out, base = settings.tuned_model_dir, settings.default_model_dir
    if if_missing and tuner.read_manifest(out) is not None and (out / "model.safetensors").is_file():
        console.print(f"Tuned model present: {out} (`kefu llm tune --force` tunes again)")
        return
    if not settings.store_path.is_file():
        raise KefuError(f"No store at {settings.store_path}; run `kefu store build` (or `make store`) first.")
    held: list[str] = []
    for path in exclude:
        if not path.is_file():
            raise KefuError(f"--exclude {path}: no such file (JSON Lines with a 'message' per line).")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    held.append(json.loads(line)["message"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise KefuError(f"--exclude {path} line {n}: expected a JSON object with a 'message'.") from None
    with connect(settings.store_path) as con:
        products, food = catalogue_phrases(con)
    made = build(products, examples, seed=seed, exclude=held, food=food)
    chats = [e.messages() for e in made]
    config = tuner.TuneConfig(steps=steps, batch=batch, seed=seed)
    if not force and tuner.is_current(out, base, tuner.data_sha256(chats), config):
        manifest = tuner.read_manifest(out) or {}
        console.print(f"Tuned model is current: {out}")
    else:
        kinds: dict[str, int] = {}
        for e in made:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("tuning", total=steps)
            manifest = tuner.train(
                base, chats, out, config,
                on_step=lambda s, loss: (bar.update(task, completed=s, description=f"tuning (loss {loss:.3f})"),
                                         s % 25 or console.log(f"step {s}/{steps}: loss {loss:.3f}")),
                extra={"kinds": kinds, "excluded_messages": len(held), "catalogue_phrases": len(products)},
            )  # fmt: skip
        console.print(
            f"Tuned {out.name}: {manifest['steps']} steps on {manifest['examples']} examples in "
            f"{manifest['train_s']} s, loss {manifest['loss_first']} -> {manifest['loss_last']}"
        )
    if as_json:
        print_json(manifest)
