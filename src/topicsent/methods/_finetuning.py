"""Fine-tuning a transformer for (pair) sequence classification on CPU.

What makes it affordable on two cores: dynamic padding with length bucketing (batches
of similar length, so little compute goes to padding), ``torch.set_num_threads``, early
stopping on held-out examples with the best weights restored, and LoRA (peft) when
only low-rank adapters should train. Bases are local only: a packaged encoder, a
packaged GGUF instruction LLM (dequantised by transformers), or a user's directory or
``.gguf`` file. Checkpoints are safetensors plus JSON, never pickle.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from topicsent._folders import folder_written_once
from topicsent._progress import progress_bar
from topicsent.encoders._transformer import prepare_transformers, require_safetensors
from topicsent.errors import InvalidParameterError

#: An example: one text, or a (text, auxiliary sentence) pair.
Example = tuple[str, str | None]
MODEL_SUBDIR = "model"
BUCKET_BATCHES = 50  # batches per length-sorted bucket: padding stays small, order stays random
ADAPTATIONS = ("full", "lora")


@dataclass(frozen=True)
class BaseModel:
    """Where base weights come from: a directory, optionally a GGUF file inside it."""

    directory: Path
    gguf_file: str | None = None

    def load_kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def resolve_base(name_or_path: str) -> BaseModel:
    """A packaged encoder or LLM name, a model directory, or a ``.gguf`` file."""
    from topicsent.encoders import TRANSFORMER_ENCODERS, resolve_encoder
    from topicsent.llm import PACKAGED_LLMS, packaged_model_path

    if name_or_path in PACKAGED_LLMS:
        gguf = packaged_model_path(name_or_path)
        return BaseModel(gguf.parent, gguf.name)
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise InvalidParameterError(f"base model file {path} does not exist")
        return BaseModel(path.parent, path.name)
    if name_or_path in TRANSFORMER_ENCODERS or path.is_dir():
        return BaseModel(resolve_encoder(name_or_path))
    known = ", ".join([*TRANSFORMER_ENCODERS, *PACKAGED_LLMS])
    raise InvalidParameterError(f"base {name_or_path!r} is not a packaged model ({known}), a model directory or a .gguf file")


def dequantised(base: BaseModel) -> BaseModel:
    """A GGUF base as an fp32 safetensors folder, written once and kept under the model
    folder (``$TOPICSENT_MODEL_DIR``): transformers takes about a minute to dequantise a
    GGUF and build its tokenizer, and reads the copy in ~2 s. Other bases are returned as they are."""
    if base.gguf_file is None:
        return base
    from topicsent.llm import model_dir

    source = base.directory / base.gguf_file
    target = model_dir() / "dequantised" / f"{source.stem}-{source.stat().st_size}"
    if not (target / "model.safetensors").is_file():
        _write_dequantised(base, target)
    return BaseModel(target)


def _write_dequantised(base: BaseModel, target: Path) -> None:
    prepare_transformers()
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with (
        folder_written_once(target) as scratch,
        progress_bar(f"dequantise {base.gguf_file} once (kept in {target.parent})", total=None),
    ):
        model = AutoModelForCausalLM.from_pretrained(base.directory, dtype=torch.float32, **base.load_kwargs())
        model.config.save_pretrained(scratch)  # transformers refuses save_pretrained on a GGUF-loaded model
        save_model(model, str(scratch / "model.safetensors"))
        AutoTokenizer.from_pretrained(base.directory, **base.load_kwargs()).save_pretrained(scratch)


def load_classifier(base: BaseModel, n_outputs: int, *, adaptation: str, lora_rank: int, seed: int):
    """A fresh classification (``n_outputs`` > 1) or regression (1) model and its tokenizer."""
    prepare_transformers()
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    base = dequantised(base)
    tokenizer = AutoTokenizer.from_pretrained(base.directory)
    model = AutoModelForSequenceClassification.from_pretrained(
        base.directory, num_labels=n_outputs, dtype=torch.float32, use_safetensors=True
    )
    _ensure_padding(tokenizer, model)
    if adaptation == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=lora_rank, lora_alpha=2 * lora_rank, lora_dropout=0.1))
    return model, tokenizer


def _ensure_padding(tokenizer, model) -> None:
    """Decoder LLMs often lack a pad token; sequence classification needs one to find
    each row's last real token."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id


def _encode(tokenizer, examples: Sequence[Example], max_length: int) -> dict[str, Any]:
    firsts = [a for a, _ in examples]
    seconds = [b for _, b in examples]
    if all(b is None for b in seconds):
        return tokenizer(firsts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return tokenizer(firsts, seconds, truncation="only_first", max_length=max_length, padding=True, return_tensors="pt")


def length_batches(lengths: Sequence[int], batch_size: int, rng: random.Random | None) -> list[list[int]]:
    """Index batches of similar lengths. With ``rng``: shuffled, then sorted by length
    within buckets of ``BUCKET_BATCHES`` batches, and the batches shuffled (training);
    without: globally sorted (prediction)."""
    order = list(range(len(lengths)))
    if rng is None:
        order.sort(key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(order)
    bucket = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), bucket):
        chunk = sorted(order[start : start + bucket], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _lengths(examples: Sequence[Example]) -> list[int]:
    """Cheap length estimate for bucketing (characters; tokenising twice would cost more)."""
    return [len(a) + len(b or "") for a, b in examples]


@dataclass
class TrainingReport:
    """What training did: the epoch kept and the validation curve."""

    best_epoch: int
    curve: list[dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "curve": self.curve}


def train_classifier(
    model,
    tokenizer,
    train: tuple[Sequence[Example], np.ndarray],
    validation: tuple[Sequence[Example], np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    max_length: int,
    patience: int,
    seed: int,
    description: str,
) -> TrainingReport:
    """AdamW with linear warm-up and decay; after each epoch, validation loss and
    accuracy; stops after ``patience`` epochs without a better validation loss and
    restores the best weights. Integer targets train a classifier (cross-entropy),
    float targets a regressor (mean squared error)."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    examples, targets = train
    regression = targets.dtype.kind == "f"
    rng = random.Random(seed)
    lengths = _lengths(examples)
    steps_per_epoch = math.ceil(len(examples) / batch_size)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * steps_per_epoch * epochs), steps_per_epoch * epochs)
    best_loss, best_state, best_epoch, curve = math.inf, None, 0, []
    torch.manual_seed(seed)
    with progress_bar(description, total=steps_per_epoch * epochs) as advance:
        for epoch in range(1, epochs + 1):
            model.train()
            for batch in length_batches(lengths, batch_size, rng):
                inputs = _encode(tokenizer, [examples[i] for i in batch], max_length)
                loss = _loss(model(**inputs).logits, torch.from_numpy(targets[batch]), regression)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                advance(1)
            val_loss, val_accuracy = _validate(model, tokenizer, validation, batch_size, max_length, regression)
            curve.append({"epoch": epoch, "validation_loss": val_loss, "validation_accuracy": val_accuracy})
            if val_loss < best_loss:
                best_loss, best_epoch = val_loss, epoch
                best_state = copy.deepcopy({k: v for k, v in model.state_dict().items() if _is_trained(model, k)})
            elif epoch - best_epoch >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    model.eval()
    return TrainingReport(best_epoch=best_epoch, curve=curve)


def _is_trained(model, key: str) -> bool:
    """State worth snapshotting for early stopping: everything under full fine-tuning,
    only adapters and the new head under LoRA."""
    return not hasattr(model, "peft_config") or "lora_" in key or "modules_to_save" in key


def _loss(logits, targets, regression: bool):
    from torch.nn import functional

    if regression:
        return functional.mse_loss(logits.squeeze(-1), targets.float())
    return functional.cross_entropy(logits, targets.long())


def _validate(model, tokenizer, validation, batch_size: int, max_length: int, regression: bool) -> tuple[float, float]:
    import torch

    examples, targets = validation
    outputs = torch.from_numpy(predict_outputs(model, tokenizer, examples, batch_size=batch_size, max_length=max_length))
    loss = float(_loss(outputs, torch.from_numpy(targets), regression))
    if regression:
        return loss, float("nan")
    return loss, float((outputs.argmax(-1).numpy() == targets).mean())


def predict_outputs(
    model,
    tokenizer,
    examples: Sequence[Example],
    *,
    batch_size: int,
    max_length: int,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Logits (or regression outputs) in input order, computed in length-sorted batches."""
    import torch

    outputs: list[np.ndarray | None] = [None] * len(examples)
    with torch.no_grad():
        for batch in length_batches(_lengths(examples), batch_size, None):
            logits = model(**_encode(tokenizer, [examples[i] for i in batch], max_length)).logits.numpy()
            for i, row in zip(batch, logits, strict=True):
                outputs[i] = row
            if on_batch:
                on_batch(len(batch))
    return np.stack(outputs) if outputs else np.empty((0, 0), dtype=np.float32)


# ----- checkpoints ------------------------------------------------------------------------------


def save_checkpoint(model, tokenizer, directory: Path, card: str, facts: dict[str, Any]) -> None:
    """Weights (full model, or the LoRA adapter only) as safetensors, the tokenizer, a
    JSON of facts and a model card (README.md) in ``directory/model``."""
    target = directory / MODEL_SUBDIR
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    (target / "training.json").write_text(json.dumps(facts, indent=2, ensure_ascii=False), encoding="utf-8")
    (target / "README.md").write_text(card, encoding="utf-8")


def load_checkpoint(directory: Path, base: str, *, adaptation: str, n_outputs: int):
    """The fine-tuned model and tokenizer saved by :func:`save_checkpoint`."""
    prepare_transformers()
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    target = directory / MODEL_SUBDIR
    require_safetensors(target)
    tokenizer = AutoTokenizer.from_pretrained(target)
    if adaptation == "full":
        model = AutoModelForSequenceClassification.from_pretrained(target, dtype=torch.float32, use_safetensors=True)
    else:
        from peft import PeftModel

        source = dequantised(resolve_base(base))
        backbone = AutoModelForSequenceClassification.from_pretrained(
            source.directory, num_labels=n_outputs, dtype=torch.float32, use_safetensors=True
        )
        _ensure_padding(tokenizer, backbone)
        model = PeftModel.from_pretrained(backbone, target)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer
