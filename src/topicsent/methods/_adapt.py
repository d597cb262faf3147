"""Self-supervised domain adaptation: continued masked-language-model pretraining of an
encoder on a user's unlabelled reviews.

The corpus streams through the project's file reader (CSV, TSV, JSONL, Parquet, gzip)
into a seeded reservoir sample of at most ``max_texts`` texts, so a file of any size
costs one pass and bounded memory. Training is :func:`fit_torch` (AdamW, warm-up and
decay, bf16 autocast, progress bar, safetensors checkpoints) with a step and a time
budget and a checkpoint every ``checkpoint_every`` steps; masking is transformers'
``DataCollatorForLanguageModeling``. The result is an encoder folder (safetensors,
tokenizer, sentence-transformers pooling files, the MLM head, a model card) that
``embed-head``, ``finetune``, ``setfit`` and ``topics`` take by path.

Why masked LM and no sentence-level objective: the vocabulary projection is applied to
the masked positions only (15% of tokens), which makes an MLM step on
multilingual-e5-small (250k-piece vocabulary) cost about twice an encoder pass instead
of five times, so the costly-head case a sentence objective (SimCSE, TSDAE) would be
for does not arise; MLM also adapts the token vectors that token-level ``embed-head``
and ``finetune`` read.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from topicsent._folders import folder_replaced, folder_written_once
from topicsent._provenance import file_sha256, git_commit
from topicsent.data import ColumnMap, review_batches
from topicsent.errors import InputDataError, InvalidParameterError
from topicsent.methods._finetuning import (
    PRECISIONS,
    Batches,
    Budget,
    Checkpoint,
    Objective,
    _validate,
    autocast_dtype,
    base_licence,
    fit_torch,
    resolve_base,
    resolve_device,
)

#: Files of a sentence-transformers folder that carry pooling and normalisation.
POOLING_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling", "2_Normalize")
MASK_PIECES = ("[MASK]", "<mask>")  # BERT's and XLM-R's, for a tokenizer that does not declare its mask
HELD_OUT_MAX = 500  # texts kept out of training to measure the MLM loss before and after
CHECKPOINT_SUFFIX = ".checkpoint"
FACTS_FILE = "adapt.json"
FRESH_HEAD_RATE = 20.0  # learning-rate factor of a new MLM head (not of the tied embeddings)


@dataclass(frozen=True)
class AdaptConfig:
    """Settings of :func:`adapt_encoder`.

    Parameters
    ----------
    text_col : str, default="text"
        Column of the corpus holding the text.
    max_texts : int, default=100_000
        Seeded sample of at most this many usable texts (reservoir, one pass over the file).
    max_steps : int or None, default=None
        Optimiser steps in all (resumed ones included); None: ``epochs`` passes over the sample.
    max_minutes : float or None, default=None
        Wall-clock budget of this call's training; the weights reached are written.
    epochs : int, default=1
        Passes over the sample when ``max_steps`` is None.
    batch_size, max_length : int, default=32, 128
    learning_rate : float, default=5e-5
    mlm_probability : float, default=0.15
        Share of tokens masked (BERT's recipe: 80% ``[MASK]``, 10% random, 10% kept).
    freeze_embeddings : bool, default=False
        Keep the token-embedding table (and the tied output projection) fixed: with a
        250k-piece vocabulary (e5) it holds most of the weights and of AdamW's memory.
    checkpoint_every : int, default=200
        Steps between checkpoints: a kill loses at most this many.
    seed : int, default=0
    device : str, default="auto"
    precision : {"auto", "fp32", "bf16"}, default="auto"

    Raises
    ------
    InvalidParameterError
        A value out of range, in scikit-learn's message shape.
    """

    text_col: str = "text"
    max_texts: int = 100_000
    max_steps: int | None = None
    max_minutes: float | None = None
    epochs: int = 1
    batch_size: int = 32
    max_length: int = 128
    learning_rate: float = 5e-5
    mlm_probability: float = 0.15
    freeze_embeddings: bool = False
    checkpoint_every: int = 200
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"

    def __post_init__(self) -> None:
        positive = {"max_texts": self.max_texts, "epochs": self.epochs, "batch_size": self.batch_size,
                    "max_length": self.max_length, "checkpoint_every": self.checkpoint_every,
                    "max_steps": 1 if self.max_steps is None else self.max_steps,
                    "max_minutes": 1 if self.max_minutes is None else self.max_minutes,
                    "learning_rate": self.learning_rate}  # fmt: skip
        for name, value in positive.items():
            if not value > 0:
                raise InvalidParameterError(f"The {name!r} parameter of adapt must be > 0. Got {value!r} instead.")
        if not 0 < self.mlm_probability < 1:
            raise InvalidParameterError(
                f"The 'mlm_probability' parameter of adapt must be in (0, 1). Got {self.mlm_probability!r} instead."
            )
        if self.precision not in PRECISIONS:
            raise InvalidParameterError(
                f"The 'precision' parameter of adapt must be one of {PRECISIONS}. Got {self.precision!r} instead."
            )


@dataclass
class Corpus:
    """The sampled texts of a corpus file and where they came from."""

    path: str
    text_col: str
    sha256: str
    rows: int
    usable: int
    texts: list[str] = field(repr=False)

    def facts(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "texts"} | {"sampled": len(self.texts)}


@dataclass
class AdaptReport:
    """What :func:`adapt_encoder` did (also in the folder's ``adapt.json`` and model card).

    Attributes
    ----------
    folder : pathlib.Path
        The encoder folder written.
    steps, planned_steps : int
        Optimiser steps taken (resumed ones included) and the steps the schedule spans.
    resumed_from : int
        Step the run continued from (0: a fresh start).
    stopped_by : str
        ``"plan"``, ``"max_steps"`` or ``"max_minutes"``.
    fresh_head : bool
        The base had no MLM head; a new one was initialised.
    held_out : dict
        MLM loss and masked-token accuracy on held-out texts before and after.
    train_curve : list of dict
        Training loss per window of steps.
    seconds : float
        Wall-clock time of this call.
    """

    folder: Path
    base: str
    corpus: dict[str, Any]
    steps: int
    planned_steps: int
    resumed_from: int
    stopped_by: str
    fresh_head: bool
    held_out: dict[str, Any]
    train_curve: list[dict[str, float]]
    seconds: float
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"folder": str(self.folder), "commit": git_commit()}


def checkpoint_folder(out: Path) -> Path:
    """Where an adaptation writing ``out`` keeps its checkpoint (a sibling folder)."""
    return out.parent / (out.name + CHECKPOINT_SUFFIX)


def read_corpus(path: str | Path, text_col: str = "text", *, max_texts: int = 100_000, seed: int = 0) -> Corpus:
    """A seeded uniform sample (reservoir) of at most ``max_texts`` non-empty texts of a
    review file, read in one streaming pass.

    Raises
    ------
    InputDataError
        An unreadable file or a missing column (named), or no usable text in the column.
    """
    rng, texts, rows, usable = random.Random(seed), [], 0, 0
    for batch in review_batches(path, ColumnMap(text=text_col), language="en", require_text=False):
        for review in batch:
            rows += 1
            if review.problem or not review.text.strip():
                continue
            usable += 1
            if len(texts) < max_texts:
                texts.append(review.text)
            elif (slot := rng.randrange(usable)) < max_texts:
                texts[slot] = review.text
    if not texts:
        raise InputDataError(f"{path}: no usable text in column {text_col!r} ({rows:,} rows, every text empty or unreadable)")
    return Corpus(str(path), text_col, file_sha256(Path(path)), rows, usable, texts)


def adapt_encoder(
    corpus: str | Path, base: str, out: str | Path, config: AdaptConfig = AdaptConfig(), *, resume: bool = False,
    overwrite: bool = False,
) -> AdaptReport:  # fmt: skip
    """Continue masked-LM pretraining of ``base`` on the texts of ``corpus`` and write the
    adapted encoder folder ``out``.

    Parameters
    ----------
    corpus : str or Path
        CSV, TSV, JSONL or Parquet (text formats may be .gz); ``config.text_col`` holds the text.
    base : str
        A packaged encoder (``all-MiniLM-L6-v2``, ``multilingual-e5-small``,
        ``all-mpnet-base-v2``) or a transformers folder of a model with a masked-LM
        architecture (BERT, RoBERTa/XLM-R, MPNet, ELECTRA, ...). A base saved without
        an MLM head gets a new one (the card says so).
    out : str or Path
        The encoder folder to write; must not exist unless ``overwrite``.
    resume : bool, default=False
        Continue from the checkpoint (``OUT.checkpoint``) a killed run left.

    Returns
    -------
    AdaptReport

    Raises
    ------
    InputDataError
        A corpus that cannot be read or has no usable text.
    InvalidParameterError
        A base that is not a masked language model, an existing ``out`` without
        ``overwrite``, a checkpoint left by an unfinished run without ``resume``, or a
        checkpoint of another adaptation.
    """
    started = time.monotonic()
    out = Path(out)
    if out.exists() and not overwrite:
        raise InvalidParameterError(f"output folder {out} exists; choose another -o or add --overwrite")
    saved = checkpoint_folder(out)
    if (saved / "state.json").is_file() and not resume:
        raise InvalidParameterError(
            f"{saved} holds the checkpoint of an unfinished adaptation; add --resume to continue it, or delete that folder"
        )
    model_dir = _masked_lm_directory(base)
    texts = read_corpus(corpus, config.text_col, max_texts=config.max_texts, seed=config.seed)
    model, tokenizer, fresh_head = _load_masked_lm(model_dir, base, config)
    train_texts, held_texts = _held_out(texts.texts, config.seed)
    device = resolve_device(config.device)
    model.to(device)
    placement = {"device": device, "precision": autocast_dtype(config.precision, device)}
    held = _masked_batches(tokenizer, held_texts, config, fixed_seed=config.seed) if held_texts else None
    before = _validate(model, held, _OBJECTIVE, config.batch_size, **placement) if held else None

    steps_per_epoch = math.ceil(len(train_texts) / config.batch_size)
    epochs = math.ceil(config.max_steps / steps_per_epoch) if config.max_steps else config.epochs
    deadline = started + 60 * config.max_minutes if config.max_minutes else None
    resumed_from = _checkpoint_step(saved) if resume else 0
    report = fit_torch(
        model, _masked_batches(tokenizer, train_texts, config), None, _OBJECTIVE,
        _param_groups(model, config.learning_rate, fresh_head), epochs=epochs, batch_size=config.batch_size, patience=epochs,
        seed=config.seed, description=f"adapt {Path(str(base)).name} on {len(train_texts):,} texts",
        checkpoint=Checkpoint(saved, _fingerprint(base, texts, config)), budget=Budget(config.max_steps, deadline),
        checkpoint_every=config.checkpoint_every, **placement,
    )  # fmt: skip
    after = _validate(model, held, _OBJECTIVE, config.batch_size, **placement) if held else None
    planned = min(steps_per_epoch * epochs, config.max_steps or steps_per_epoch * epochs)
    result = AdaptReport(
        folder=out, base=str(base), corpus=texts.facts(), steps=report.steps, planned_steps=planned,
        resumed_from=resumed_from, stopped_by=_stop_reason(report.steps, planned, config),
        fresh_head=fresh_head, held_out=_held_out_facts(len(held_texts), before, after),
        train_curve=report.train_curve(), seconds=time.monotonic() - started, config=asdict(config),
    )  # fmt: skip
    _write_folder(model, tokenizer, model_dir, out, result, overwrite=overwrite)
    shutil.rmtree(saved, ignore_errors=True)  # the folder holds the result now
    return result


# ----- the base -------------------------------------------------------------------------------


def _masked_lm_directory(base: str) -> Path:
    """The base's folder, once it is known to have a masked-LM architecture."""
    from topicsent.encoders import TRANSFORMER_ENCODERS
    from topicsent.encoders._transformer import prepare_transformers

    resolved = resolve_base(base)
    advice = f"adapt needs an encoder with a masked-LM architecture (BERT, XLM-R, MPNet, ...: {', '.join(TRANSFORMER_ENCODERS)})"
    if resolved.gguf_file:
        raise InvalidParameterError(f"base {base!r} is a GGUF decoder LLM, not a masked language model; {advice}")
    prepare_transformers()
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    model_type = AutoConfig.from_pretrained(resolved.directory).model_type
    if model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise InvalidParameterError(f"base {base!r} ({model_type}) is not a masked language model; {advice}")
    return resolved.directory


def _load_masked_lm(directory: Path, base: str, config: AdaptConfig):
    """The base as a masked LM whose encoder keeps its pooler (``finetune`` classifies
    from it), its tokenizer, and whether the MLM head is new."""
    import torch
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.mask_token is None:  # the rebuilt e5 keeps XLM-R's <mask> piece without declaring it
        piece = next((p for p in MASK_PIECES if tokenizer.convert_tokens_to_ids(p) != tokenizer.unk_token_id), None)
        if piece is None:
            raise InvalidParameterError(f"base {base!r}: its tokenizer has no mask token, so it cannot be a masked LM")
        tokenizer.mask_token = piece
    torch.manual_seed(config.seed)  # a new head is initialised the same way every time
    masked_lm, loading = AutoModelForMaskedLM.from_pretrained(
        directory, dtype=torch.float32, use_safetensors=True, output_loading_info=True
    )
    prefix = masked_lm.base_model_prefix
    fresh_head = any(not key.startswith(prefix + ".") for key in loading["missing_keys"])
    # a masked-LM class builds its encoder without the pooler: put back the base's own
    setattr(masked_lm, prefix, AutoModel.from_pretrained(directory, dtype=torch.float32, use_safetensors=True))
    if masked_lm.config.tie_word_embeddings:
        masked_lm.get_output_embeddings().weight = masked_lm.get_input_embeddings().weight
    if config.freeze_embeddings:
        masked_lm.get_input_embeddings().weight.requires_grad_(False)
    return _masked_lm_module(masked_lm), tokenizer, fresh_head


def _param_groups(model, learning_rate: float, fresh_head: bool) -> list[dict[str, Any]]:
    """AdamW groups: a new head learns at ``FRESH_HEAD_RATE`` times the rate, so it
    catches up with the pretrained encoder in tens of steps instead of spending the
    budget on it while its random gradients push the encoder around."""
    encoder = {id(p) for p in model.masked_lm.base_model.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    head = [p for p in trainable if id(p) not in encoder]
    rest = [p for p in trainable if id(p) in encoder]
    scale = FRESH_HEAD_RATE if fresh_head else 1.0
    return [{"params": rest, "lr": learning_rate}, {"params": head, "lr": learning_rate * scale}]


def _held_out(texts: list[str], seed: int) -> tuple[list[str], list[str]]:
    """(training texts, held-out texts): up to ``HELD_OUT_MAX`` (5%) kept out, none from
    a corpus of fewer than 20 texts."""
    n_held = min(HELD_OUT_MAX, len(texts) // 20)
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    held = set(order[:n_held])
    return [t for i, t in enumerate(texts) if i not in held], [texts[i] for i in sorted(held)]


# ----- the objective --------------------------------------------------------------------------


def _masked_lm_module(masked_lm):
    """``masked_lm`` wrapped as below; the class is built here so torch loads only when needed."""
    import torch
    from torch.nn import functional

    class MaskedLM(torch.nn.Module):
        """A transformers masked LM returning its loss and masked-token hits (what
        :func:`fit_torch` scores). When the head is one module after the encoder (BERT,
        XLM-R, MPNet), it runs on the masked positions only: the vocabulary projection
        is most of an MLM step's cost with a large vocabulary."""

        def __init__(self, masked_lm) -> None:
            super().__init__()
            self.masked_lm = masked_lm
            heads = [name for name, _ in masked_lm.named_children() if name != masked_lm.base_model_prefix]
            self.head_name = heads[0] if len(heads) == 1 else None

        def forward(self, labels, **inputs):
            chosen = labels != -100
            if self.head_name is None:  # a head of several pieces (DistilBERT): the model's own forward
                logits = self.masked_lm(**inputs).logits[chosen]
            else:
                hidden = self.masked_lm.base_model(**inputs).last_hidden_state
                logits = getattr(self.masked_lm, self.head_name)(hidden[chosen])
            targets = labels[chosen]
            loss = functional.cross_entropy(logits.float(), targets) if len(targets) else logits.sum() * 0.0
            correct = (logits.argmax(-1) == targets).sum()
            return {"loss": loss, "correct": correct, "count": torch.tensor(len(targets))}

    return MaskedLM(masked_lm)


_OBJECTIVE = Objective(lambda outputs, _: outputs["loss"], lambda outputs, _: (int(outputs["correct"]), int(outputs["count"])))


def _masked_batches(tokenizer, texts: list[str], config: AdaptConfig, *, fixed_seed: int | None = None) -> Batches:
    """Batches of masked texts. Training masks anew each time (the global torch
    generator, restored on resume); with ``fixed_seed`` each batch is masked the same
    way on every pass, so held-out losses before and after training compare."""
    from transformers import DataCollatorForLanguageModeling

    def inputs(rows: list[int]) -> dict[str, Any]:
        seed = None if fixed_seed is None else fixed_seed + rows[0]
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mlm_probability, seed=seed)
        encoded = tokenizer([texts[i] for i in rows], truncation=True, max_length=config.max_length)
        batch = collator([{"input_ids": ids} for ids in encoded["input_ids"]])
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": batch["labels"]}

    return Batches([len(t) for t in texts], inputs, lambda rows: None)


def _fingerprint(base: str, corpus: Corpus, config: AdaptConfig) -> str:
    """What a checkpoint must match to be resumed: the base, the settings that shape
    training (not the budgets or the device) and the sampled texts."""
    shaping = {k: v for k, v in asdict(config).items() if k not in {"max_steps", "max_minutes", "device", "epochs"}}
    digest = hashlib.sha256(json.dumps([base, shaping], sort_keys=True).encode())
    for text in corpus.texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def _checkpoint_step(folder: Path) -> int:
    """The step a checkpoint folder holds (0: none)."""
    state = folder / "state.json"
    return json.loads(state.read_text(encoding="utf-8")).get("step", 0) if state.is_file() else 0


def _stop_reason(steps: int, planned: int, config: AdaptConfig) -> str:
    if steps >= planned:
        return "plan" if config.max_steps is None or planned < config.max_steps else "max_steps"
    return "max_minutes"


def _held_out_facts(n: int, before: tuple[float, float] | None, after: tuple[float, float] | None) -> dict[str, Any]:
    if before is None or after is None:
        return {"texts": 0}
    return {"texts": n, "loss_before": before[0], "loss_after": after[0], "accuracy_before": before[1],
            "accuracy_after": after[1]}  # fmt: skip


# ----- the folder -----------------------------------------------------------------------------


def _write_folder(model, tokenizer, base_dir: Path, out: Path, report: AdaptReport, *, overwrite: bool) -> None:
    """Weights (safetensors), tokenizer, pooling files, ``adapt.json`` and the model card,
    written to a scratch folder and renamed into place."""
    from topicsent.encoders import write_sentence_transformer_files

    # --overwrite: the old folder stays until the new one is written whole
    with folder_replaced(out) if overwrite else folder_written_once(out) as scratch:
        model.masked_lm.save_pretrained(scratch, safe_serialization=True)
        tokenizer.save_pretrained(scratch)
        if (base_dir / "modules.json").is_file():
            for name in POOLING_FILES:
                source = base_dir / name
                if source.is_dir():
                    shutil.copytree(source, scratch / name)
                elif source.is_file():
                    shutil.copy2(source, scratch / name)
        else:
            write_sentence_transformer_files(scratch, model.masked_lm.config.hidden_size)
        facts = report.to_dict()
        (scratch / FACTS_FILE).write_text(json.dumps(facts, indent=2, ensure_ascii=False), encoding="utf-8")
        (scratch / "README.md").write_text(model_card(facts), encoding="utf-8")


def model_card(facts: dict[str, Any]) -> str:
    """The README of an adapted encoder folder, from its ``adapt.json`` facts."""
    corpus, held, config = facts["corpus"], facts["held_out"], facts["config"]
    head = "a new MLM head (the base was saved without one)" if facts["fresh_head"] else "its own MLM head"
    lines = [
        f"# {Path(facts['folder']).name}: {facts['base']} adapted to a review corpus (topicsent adapt)", "",
        f"Continued masked-language-model pretraining of `{facts['base']}` ({base_licence(facts['base'])}) with {head}.",
        "", "| | |", "|---|---|",
        f"| corpus | `{corpus['path']}`, column `{corpus['text_col']}` |",
        f"| corpus sha256 | `{corpus['sha256']}` |",
        f"| texts | {corpus['rows']:,} rows, {corpus['usable']:,} usable, {corpus['sampled']:,} sampled "
        f"(seed {config['seed']}) |",
        f"| steps | {facts['steps']:,} of {facts['planned_steps']:,} planned (stopped by {facts['stopped_by']}; "
        f"resumed from step {facts['resumed_from']:,}) |",
        f"| batch, max length, learning rate | {config['batch_size']}, {config['max_length']}, {config['learning_rate']} |",
        f"| masked share, embeddings frozen | {config['mlm_probability']}, {config['freeze_embeddings']} |",
        f"| time of the last run | {facts['seconds']:,.0f} s |",
        f"| topicsent commit | {facts['commit']} |",
    ]  # fmt: skip
    if held["texts"]:
        lines.append(
            f"| held-out MLM loss ({held['texts']} texts) | {held['loss_before']:.3f} before, {held['loss_after']:.3f} after "
            f"(masked-token accuracy {held['accuracy_before']:.1%} -> {held['accuracy_after']:.1%}) |"
        )
    lines += ["", "## Training loss", "", "| step | loss |", "|---:|---:|"]
    lines += [f"| {point['step']} | {point['loss']:.3f} |" for point in facts["train_curve"]]
    lines += ["", "Use it by path: `embed-head[encoder=FOLDER]`, `finetune[base=FOLDER]`, `setfit[encoder=FOLDER]`, "
              "`topicsent topics --encoder FOLDER`.", ""]  # fmt: skip
    return "\n".join(lines)
