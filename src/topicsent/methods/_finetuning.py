"""Fine-tuning a transformer for (pair) sequence classification on CPU.

What makes it affordable on two cores: dynamic padding with length bucketing (batches
of similar length, so little compute goes to padding), ``torch.set_num_threads``, early
stopping on held-out examples with the best weights restored, and LoRA (peft) when
only low-rank adapters should train. Bases are local only: a packaged encoder, a
packaged GGUF instruction LLM (dequantised by transformers), or a user's directory or
``.gguf`` file. Checkpoints are safetensors plus JSON, never pickle.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(device: str):
    """``auto``: the first CUDA GPU when torch sees one, else the CPU; ``cpu``;
    ``cuda`` or ``cuda:N`` (refused with one line when torch sees no GPU).

    Raises
    ------
    InvalidParameterError
        For a CUDA device on a machine (or torch build) without one.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidParameterError(f"device {device!r}: torch sees no CUDA GPU here (this torch is {torch.__version__})")
    return torch.device(device)


def autocast_dtype(precision: str, device):
    """The dtype matrix products run in (torch autocast), or None for plain fp32.

    ``auto`` picks bfloat16 where the hardware computes it natively: a CUDA GPU that
    supports it, or a CPU with AVX512-BF16/AMX (oneDNN; about 2.4x faster steps than
    fp32 when fine-tuning MPNet-base on this project's 2-core machine). Weights and
    the optimiser stay fp32, so no loss scaling is needed."""
    import torch

    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def to_device(inputs: Any, device) -> Any:
    """Tensors (alone or in a dict) moved to ``device``; other values as they are."""
    if isinstance(inputs, dict):
        return {k: to_device(v, device) for k, v in inputs.items()}
    return inputs.to(device) if hasattr(inputs, "to") else inputs


@dataclass(frozen=True)
class BaseModel:
    """Where base weights come from: a directory, optionally a GGUF file inside it."""

    directory: Path
    gguf_file: str | None = None

    def load_kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def resolve_base(name_or_path: str) -> BaseModel:
    """A packaged encoder or LLM name, a model directory, or a ``.gguf`` file.

    Raises
    ------
    InvalidParameterError
        A missing ``.gguf`` file, or a name that is neither packaged nor a folder.
    ModelFileError
        A model folder without safetensors weights, or an assembled encoder that cannot
        be assembled and checked (see :func:`topicsent.encoders.resolve_encoder`).
    """
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


def base_licence(name_or_path: str) -> str:
    """The licence of a packaged base (encoder or LLM) for a model card; for any other
    base, a pointer to its own."""
    from topicsent.encoders import encoder_facts
    from topicsent.llm import PACKAGED_LLMS

    facts = encoder_facts(name_or_path)
    if facts is not None:
        return facts.licence
    if name_or_path in PACKAGED_LLMS:
        return PACKAGED_LLMS[name_or_path].licence
    return "see the base model's own licence"


def dequantised(base: BaseModel) -> BaseModel:
    """A GGUF base as an fp32 safetensors folder, written once and kept under the model
    folder (``$TOPICSENT_MODEL_DIR``): transformers takes about a minute to dequantise a
    GGUF and build its tokenizer, and reads the copy in ~2 s. Other bases are returned as they are."""
    if base.gguf_file is None:
        return base
    from topicsent._folders import model_dir

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


def encode_examples(tokenizer, examples: Sequence[Example], max_length: int) -> dict[str, Any]:
    """Tokenised examples (text, or text and auxiliary sentence), padded to the batch's longest."""
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


TRAIN_CURVE_POINTS = 50  # the training-loss curve a report keeps: at most this many window means


@dataclass
class TrainingReport:
    """What training did: the epoch kept, the validation curve, the optimiser steps
    taken (resumed ones included) and the training loss of each of them."""

    best_epoch: int
    curve: list[dict[str, float]]
    steps: int = 0
    train_losses: list[float] = field(default_factory=list)

    def train_curve(self, points: int = TRAIN_CURVE_POINTS) -> list[dict[str, float]]:
        """The training loss as at most ``points`` means over equal windows of steps:
        ``{"step": last step of the window, "loss": mean}`` (one step's loss is noisy)."""
        losses = self.train_losses
        width = max(1, math.ceil(len(losses) / points))
        return [
            {"step": min(start + width, len(losses)), "loss": float(np.mean(losses[start : start + width]))}
            for start in range(0, len(losses), width)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "curve": self.curve}


@dataclass(frozen=True)
class Budget:
    """When :func:`fit_torch` stops before its epochs are done: after ``max_steps``
    optimiser steps in all (resumed ones included), or once ``time.monotonic()`` passes
    ``deadline`` (this process's clock: a time budget counts from each start)."""

    max_steps: int | None = None
    deadline: float | None = None

    def spent(self, steps: int) -> bool:
        return (self.max_steps is not None and steps >= self.max_steps) or (
            self.deadline is not None and time.monotonic() >= self.deadline
        )


@dataclass(frozen=True)
class Checkpoint:
    """Where :func:`fit_torch` keeps its state after every epoch, and a fingerprint of
    what is being trained (parameters, task, training data): a folder holding another
    training's state is refused rather than resumed."""

    folder: Path
    fingerprint: str


@dataclass
class Batches:
    """Examples for :func:`fit_torch`, addressed by row: a length per row (for length
    bucketing) and functions that build a batch's model inputs and targets."""

    lengths: Sequence[int]
    inputs: Callable[[list[int]], dict[str, Any]]
    targets: Callable[[list[int]], Any]


@dataclass
class Objective:
    """How outputs are scored: ``loss(outputs, targets)`` (a scalar tensor), and
    ``hits(outputs, targets)`` -> (correct, counted) for the validation accuracy
    (``counted`` 0 when accuracy has no meaning, e.g. regression). ``selection``: the
    validation loss early stopping watches, when it is not the whole training loss (a
    model with several heads is kept for what it is scored on)."""

    loss: Callable[[Any, Any], Any]
    hits: Callable[[Any, Any], tuple[int, int]]
    selection: Callable[[Any, Any], Any] | None = None


def train_classifier(
    model,
    tokenizer,
    train: tuple[Sequence[Example], np.ndarray],
    validation: tuple[Sequence[Example], np.ndarray],
    *,
    learning_rate: float,
    max_length: int,
    **fit_options: Any,
) -> TrainingReport:
    """Fine-tune a sequence classifier on (pair) examples with :func:`fit_torch`
    (``fit_options``: its keyword arguments). Integer targets train a classifier
    (cross-entropy), float targets a regressor (mean squared error)."""
    regression = train[1].dtype.kind == "f"

    def batches(examples: Sequence[Example], targets: np.ndarray) -> Batches:
        import torch

        return Batches(
            _lengths(examples),
            lambda rows: encode_examples(tokenizer, [examples[i] for i in rows], max_length),
            lambda rows: torch.from_numpy(targets[rows]),
        )

    trainable = [p for p in model.parameters() if p.requires_grad]
    return fit_torch(
        _LogitsOf(model), batches(*train), batches(*validation), Objective(
            lambda logits, targets: _loss(logits, targets, regression), lambda logits, targets: _hits(logits, targets, regression)
        ), [{"params": trainable, "lr": learning_rate}], **fit_options,
    )  # fmt: skip


class _LogitsOf:
    """A transformers classifier seen as a callable returning its logits (what
    :func:`fit_torch` scores), with the module methods training needs. The classifier
    may also be its ONNX Runtime session (:class:`~topicsent.methods._onnx_runtime.OnnxModule`),
    which returns a dict with the same names."""

    def __init__(self, model) -> None:
        self.model = model

    def __call__(self, **inputs):
        return self.model(**inputs)["logits"]

    def __getattr__(self, name: str):
        return getattr(self.model, name)


def fit_torch(
    model,
    train: Batches,
    validation: Batches | None,
    objective: Objective,
    param_groups: list[dict[str, Any]],
    *,
    epochs: int,
    batch_size: int,
    patience: int,
    seed: int,
    description: str,
    checkpoint: Checkpoint | None = None,
    device=None,
    precision: Any = None,
    monitor: str = "loss",
    budget: Budget = Budget(),
    checkpoint_every: int | None = None,
) -> TrainingReport:
    """AdamW with linear warm-up (6% of steps) and linear decay, gradient clipping;
    after each epoch, validation loss and accuracy; stops after ``patience`` epochs
    without a better ``monitor`` (``"loss"``: lower validation loss; ``"accuracy"``:
    higher validation accuracy, ties to the lower loss; the loss where accuracy has no
    meaning, as for a regressor) and restores the best weights.
    Selecting by accuracy matters when the loss turns up from over-confidence while
    accuracy still rises (seen on MAMS and SemEval-14 with MPNet).

    ``param_groups`` are AdamW's (each with its own ``lr``: layer-wise rates). With
    ``checkpoint``, the state after every epoch is written to its folder (safetensors
    and JSON, no pickle) and a later call with the same checkpoint continues from the
    last finished epoch: a training killed at any point loses at most one epoch.
    Batches move to ``device`` (default: the CPU); forward passes run under autocast
    to ``precision`` (a torch dtype; None: fp32).

    Without ``validation`` (continued pretraining) there is no early stopping and the
    last weights are kept. ``budget`` stops training early (a step count or a deadline;
    the learning-rate schedule spans ``budget.max_steps`` when that is fewer steps than
    the epochs hold); with ``checkpoint_every`` the state is also written every that
    many steps, and a resumed call skips the batches of the epoch already trained, so
    a kill loses at most that many steps.

    Returns
    -------
    TrainingReport
        The epoch kept, the validation curve (of every epoch, resumed ones included),
        the steps taken and their training losses.

    Raises
    ------
    InvalidParameterError
        The checkpoint folder holds the state of another training.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    steps_per_epoch = math.ceil(len(train.lengths) / batch_size)
    planned = min(steps_per_epoch * epochs, budget.max_steps or steps_per_epoch * epochs)
    trainable = [p for group in param_groups for p in group["params"]]
    optimizer = torch.optim.AdamW(param_groups, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * planned), planned)
    torch.manual_seed(seed)
    state = _EpochState(model, monitor)
    if checkpoint is not None:  # restores the generator where the killed run left it: dropout continues as it would have
        state.resume(checkpoint, optimizer, schedule)
        state.step = max(state.step, steps_per_epoch * state.epoch)  # a checkpoint from before steps were counted
    stopped = False
    with progress_bar(description, total=planned) as advance:
        advance(state.step)
        while state.epoch < epochs and not (validation is not None and state.stale(patience)) and not stopped:
            model.train()
            batches = length_batches(train.lengths, batch_size, random.Random(seed + state.epoch))
            for batch in batches[state.step - steps_per_epoch * state.epoch :]:  # a resumed epoch skips what it trained
                if stopped := budget.spent(state.step):
                    break
                with _autocast(device, precision):
                    outputs = model(**to_device(train.inputs(batch), device))
                loss = objective.loss(_as_float(outputs), to_device(train.targets(batch), device))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                state.end_step(float(loss.detach()))
                advance(1)
                if checkpoint is not None and checkpoint_every and state.step % checkpoint_every == 0:
                    state.save(checkpoint, optimizer, schedule)
            if stopped:
                break
            state.end_epoch(*(_validate(model, validation, objective, batch_size, device, precision) if validation else ()))
            if checkpoint is not None:
                state.save(checkpoint, optimizer, schedule)
    if stopped and checkpoint is not None:
        state.save(checkpoint, optimizer, schedule)
    state.restore_best()
    model.eval()
    return TrainingReport(best_epoch=state.best_epoch, curve=state.curve, steps=state.step, train_losses=state.losses)


class _EpochState:
    """Early-stopping bookkeeping (curve, best epoch and its weights) and its checkpoint."""

    def __init__(self, model, monitor: str = "loss") -> None:
        self.model, self.monitor, self.epoch, self.curve = model, monitor, 0, []
        self.best_epoch, self.best_loss, self.best_weights = 0, math.inf, None
        self.step, self.losses = 0, []

    def end_step(self, loss: float) -> None:
        self.step += 1
        self.losses.append(loss)

    def end_epoch(self, loss: float | None = None, accuracy: float | None = None) -> None:
        """Count a finished epoch; with its validation loss and accuracy, track the best."""
        self.epoch += 1
        if loss is None:  # no validation: the last weights are the ones kept
            return
        self.curve.append({"epoch": self.epoch, "validation_loss": loss, "validation_accuracy": accuracy})
        if self._better(loss, accuracy):
            self.best_loss, self.best_epoch = loss, self.epoch
            self.best_weights = {k: v.detach().clone() for k, v in self._trained_state().items()}

    def _better(self, loss: float, accuracy: float) -> bool:
        """Whether this epoch beats the best so far on the monitored measure."""
        if self.monitor == "loss" or self.best_epoch == 0 or math.isnan(accuracy):  # NaN: a regressor has no accuracy
            return loss < self.best_loss
        best_accuracy = self.curve[self.best_epoch - 1]["validation_accuracy"]
        return accuracy > best_accuracy or (accuracy == best_accuracy and loss < self.best_loss)

    def stale(self, patience: int) -> bool:
        return self.epoch - self.best_epoch >= patience

    def restore_best(self) -> None:
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights, strict=False)

    def _trained_state(self) -> dict[str, Any]:
        """The weights that train (all under full fine-tuning; adapters and the new head
        under LoRA; the top layers and heads under partial unfreezing)."""
        trained = {name for name, p in self.model.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.model.state_dict().items() if k in trained}

    def save(self, checkpoint: Checkpoint, optimizer, schedule) -> None:
        """The state after an epoch, written through temporary names and renamed."""
        import torch
        from safetensors.torch import save_file

        folder = checkpoint.folder
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v.contiguous() for k, v in self._trained_state().items()}
        tensors |= {f"best.{k}": v.contiguous() for k, v in (self.best_weights or {}).items()}
        optimizer_state = optimizer.state_dict()
        for index, values in optimizer_state["state"].items():
            tensors |= {f"adam.{index}.{name}": torch.as_tensor(v).contiguous() for name, v in values.items()}
        tensors["torch_rng"] = torch.get_rng_state()
        facts = {
            "fingerprint": checkpoint.fingerprint, "epoch": self.epoch, "curve": self.curve,
            "best_epoch": self.best_epoch, "best_loss": self.best_loss, "param_groups": optimizer_state["param_groups"],
            "schedule": schedule.state_dict(), "step": self.step, "losses": self.losses,
        }  # fmt: skip
        save_file(tensors, folder / "state.safetensors.tmp")
        (folder / "state.json.tmp").write_text(json.dumps(facts), encoding="utf-8")
        (folder / "state.safetensors.tmp").replace(folder / "state.safetensors")
        (folder / "state.json.tmp").replace(folder / "state.json")

    def resume(self, checkpoint: Checkpoint, optimizer, schedule) -> None:
        """Continue from the checkpoint's last finished epoch, if it holds one.

        Raises
        ------
        InvalidParameterError
            When the folder holds the state of another training (parameters or data).
        """
        folder = checkpoint.folder
        if not (folder / "state.json").is_file():
            return
        import torch
        from safetensors.torch import load_file

        facts = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        if facts.get("fingerprint") != checkpoint.fingerprint:
            raise InvalidParameterError(
                f"checkpoint folder {folder} holds the state of another training (other parameters or data); "
                "give a new checkpoint_dir or delete that folder"
            )
        tensors = load_file(folder / "state.safetensors")
        self.model.load_state_dict(_with_prefix(tensors, "model."), strict=False)
        self.best_weights = _with_prefix(tensors, "best.") or None
        adam: dict[int, dict[str, Any]] = {}
        for key, value in _with_prefix(tensors, "adam.").items():
            index, name = key.split(".", 1)
            adam.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": adam, "param_groups": facts["param_groups"]})
        schedule.load_state_dict(facts["schedule"])
        torch.set_rng_state(tensors["torch_rng"])
        self.epoch, self.curve, self.best_epoch = facts["epoch"], facts["curve"], facts["best_epoch"]
        self.best_loss = facts["best_loss"]
        self.step, self.losses = facts.get("step", 0), facts.get("losses", [])


def _with_prefix(tensors: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _loss(logits, targets, regression: bool):
    from torch.nn import functional

    if regression:
        return functional.mse_loss(logits.squeeze(-1), targets.float())
    return functional.cross_entropy(logits, targets.long())


def _hits(logits, targets, regression: bool) -> tuple[int, int]:
    if regression:
        return 0, 0
    return int((logits.argmax(-1) == targets).sum()), len(targets)


def _autocast(device, precision):
    import torch

    kind = device.type if device is not None else "cpu"
    return torch.autocast(kind, dtype=precision, enabled=precision is not None)


def _as_float(outputs: Any) -> Any:
    """Outputs (a tensor or a dict of them) in fp32, for losses and probabilities."""
    if isinstance(outputs, dict):
        return {k: v.float() for k, v in outputs.items()}
    return outputs.float()


def run_batches(model, inputs: Any, device=None, precision: Any = None) -> Any:
    """The model's fp32 outputs for one batch of inputs, without gradients."""
    import torch

    with torch.no_grad(), _autocast(device, precision):
        return _as_float(model(**to_device(inputs, device)))


def _validate(model, validation: Batches, objective: Objective, batch_size: int, device, precision) -> tuple[float, float]:
    """Mean loss (the objective's selection loss; weighted by batch size) and accuracy over
    the validation rows."""
    model.eval()
    total_loss, rows, correct, counted = 0.0, 0, 0, 0
    for batch in length_batches(validation.lengths, batch_size, None):
        outputs = run_batches(model, validation.inputs(batch), device, precision)
        targets = to_device(validation.targets(batch), device)
        total_loss += float((objective.selection or objective.loss)(outputs, targets)) * len(batch)
        rows += len(batch)
        hit, seen = objective.hits(outputs, targets)
        correct, counted = correct + hit, counted + seen
    return total_loss / max(rows, 1), (correct / counted) if counted else float("nan")


def predict_outputs(
    model,
    tokenizer,
    examples: Sequence[Example],
    *,
    batch_size: int,
    max_length: int,
    on_batch: Callable[[int], None] | None = None,
    device=None,
    precision: Any = None,
) -> np.ndarray:
    """Logits (or regression outputs) of a sequence classifier, ``(len(examples), n_outputs)``."""
    if not examples:
        return np.empty((0, 0), dtype=np.float32)
    inputs = lambda rows: encode_examples(tokenizer, [examples[i] for i in rows], max_length)  # noqa: E731
    return outputs_in_order(
        _LogitsOf(model), _lengths(examples), inputs, batch_size=batch_size, on_batch=on_batch, device=device, precision=precision
    )


def outputs_in_order(
    model,
    lengths: Sequence[int],
    inputs: Callable[[list[int]], dict[str, Any]],
    *,
    batch_size: int,
    outputs_per_row: Sequence[int] | None = None,
    on_batch: Callable[[int], None] | None = None,
    device=None,
    precision: Any = None,
) -> Any:
    """A model's outputs for rows ``0..len(lengths)-1`` in input order, computed in
    length-sorted batches: an array, or a dict of them when the model returns a dict.
    Each row gives one output (``outputs_per_row[i]`` when given: e.g. one per term
    of a review), so the result has ``sum(outputs_per_row)`` (or ``len(lengths)``) rows."""
    counts = [1] * len(lengths) if outputs_per_row is None else list(outputs_per_row)
    per_row: list[Any] = [None] * len(lengths)
    for batch in length_batches(lengths, batch_size, None):
        outputs = run_batches(model, inputs(batch), device, precision)
        arrays = {k: v.cpu().numpy() for k, v in outputs.items()} if isinstance(outputs, dict) else outputs.cpu().numpy()
        starts = np.cumsum([0] + [counts[i] for i in batch])
        for i, start, end in zip(batch, starts[:-1], starts[1:], strict=True):
            per_row[i] = {k: v[start:end] for k, v in arrays.items()} if isinstance(arrays, dict) else arrays[start:end]
        if on_batch:
            on_batch(len(batch))
    if per_row and isinstance(per_row[0], dict):
        return {k: np.concatenate([row[k] for row in per_row]) for k in per_row[0]}
    return np.concatenate(per_row)


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
