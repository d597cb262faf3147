"""``topicsent adapt``: continue pretraining an encoder on unlabelled reviews (masked LM)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from topicsent.interfaces._options import TextCol
from topicsent.interfaces._tables import print_line


def adapt(
    corpus: Annotated[Path, typer.Argument(help="Unlabelled reviews: CSV, TSV, JSONL or Parquet (.gz text ok), any size.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The adapted encoder folder to write.")],
    base: Annotated[
        str,
        typer.Option(help="Encoder to adapt: all-MiniLM-L6-v2, multilingual-e5-small, all-mpnet-base-v2, or a folder."),
    ] = "multilingual-e5-small",
    text_col: TextCol = "text",
    max_texts: Annotated[int, typer.Option(help="Seeded sample of at most N texts of the corpus (one pass).")] = 100_000,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimiser steps in all (resumed ones included).")] = None,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop training after M minutes; the weights reached are written.")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the sample when --max-steps is not given.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Texts per step.")] = 32,
    max_length: Annotated[int, typer.Option(help="Tokens per text (longer texts are cut).")] = 128,
    learning_rate: Annotated[float, typer.Option(help="Peak learning rate of the encoder.")] = 5e-5,
    freeze_embeddings: Annotated[
        bool, typer.Option(help="Keep the token-embedding table fixed (most of e5's weights; saves memory and time).")
    ] = False,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints (OUT.checkpoint).")] = 200,
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint a killed run left in OUT.checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace the --out folder if it exists.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the sample, the masking and the training order.")] = 0,
    precision: Annotated[str, typer.Option(help="auto (bf16 where the CPU computes it natively), fp32 or bf16.")] = "auto",
) -> None:
    """Adapt an encoder to your reviews: continued masked-language-model pretraining on
    their unlabelled texts, then use the folder by path in `embed-head`, `finetune`,
    `setfit` and `topics`.

    The folder holds safetensors weights, the tokenizer, sentence-transformers pooling
    files and a model card (README.md: base, corpus sha256, steps, held-out MLM loss
    before and after, training-loss curve, time). A checkpoint is written every
    --checkpoint-every steps; after a kill, the same command with --resume continues.

    Examples:

      topicsent adapt reviews.csv --base all-MiniLM-L6-v2 -o enc/ --max-minutes 30

      topicsent adapt nsmc.tsv.gz --base multilingual-e5-small --freeze-embeddings --max-steps 2000 -o enc-ko/

      topicsent train labels.csv --rating-col stars -m finetune --params '{"base": "enc/"}' -o model/
    """
    from topicsent.methods import AdaptConfig, adapt_encoder

    config = AdaptConfig(
        text_col=text_col, max_texts=max_texts, max_steps=max_steps, max_minutes=max_minutes, epochs=epochs,
        batch_size=batch_size, max_length=max_length, learning_rate=learning_rate, freeze_embeddings=freeze_embeddings,
        checkpoint_every=checkpoint_every, seed=seed, precision=precision,
    )  # fmt: skip
    report = adapt_encoder(corpus, base, out, config, resume=resume, overwrite=overwrite)
    held = report.held_out
    loss = f"; held-out MLM loss {held['loss_before']:.3f} -> {held['loss_after']:.3f}" if held["texts"] else ""
    resumed = f" (resumed from step {report.resumed_from:,})" if report.resumed_from else ""
    print_line(
        f"Adapted {base} on {report.corpus['sampled']:,} texts: {report.steps:,} steps{resumed}, "
        f"stopped by {report.stopped_by}, {report.seconds:,.0f} s{loss}. Encoder folder: [bold]{out}[/bold]"
    )
