"""SetFit: contrastive fine-tuning of a sentence encoder, then a linear head.

The `setfit` library (1.2, works with the pinned stack) trains the encoder body on
pairs of same-label / different-label examples, which makes it strong with a few
labelled examples per class (``examples_per_class=8``). The head is our own logistic
regression on the tuned embeddings, so a saved model is safetensors + arrays (setfit's
own head would be pickled). Aspects use the same (review, question) examples as
``finetune``, joined into one text, so one model detects categories (``none``) and
rates them.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from topicsent._progress import progress_bar
from topicsent.data import Review
from topicsent.encoders import default_encoder
from topicsent.encoders._transformer import prepare_transformers, resolve_encoder
from topicsent.methods._finetuning import Example
from topicsent.methods._linear import fit_classifier, fit_rater, load_models, predict_ratings, rating_proba, save_models
from topicsent.methods._pair_classifier import PairClassifierMethod
from topicsent.schema import Task

BODY_DIR = "body"
HEAD_FILE = "head.npz"
ENCODE_BATCH = 64


def _joined(example: Example) -> str:
    """The question first, so truncation cuts the end of a long review, never the aspect."""
    text, question = example
    return text if question is None else f"{question} {text}"


class SetFitMethod(PairClassifierMethod):
    """SetFit contrastive fine-tuning of a sentence encoder + logistic-regression head.

    Parameters
    ----------
    encoder : str or None, default=None
        Packaged encoder name or local sentence-transformers / transformers directory;
        None: the default encoder of the training data's language
        (``all-MiniLM-L6-v2`` for English, ``multilingual-e5-small`` for Korean and others).
    examples_per_class : int or None, default=None
        Few-shot: train on at most this many examples of each class (8, 16, 32, 64...).
    negative_ratio : float, default=0.5
        ACSA: ``none`` examples (unmentioned categories) per labelled aspect.
    num_iterations : int, default=20
        Contrastive pairs generated per training example (setfit's default).
    max_steps : int, default=500
        Cap on contrastive training steps, so large training sets stay affordable on CPU.
    train_batch_size : int, default=16
    max_length : int, default=128
    C : float, default=1.0
        Inverse regularisation of the head.
    rating_model : {"classify", "regress"}, default="classify"
    term_finder : str, default="auto"
        ATSA, for reviews that come without terms: ``"auto"`` (``"trained"`` when torch is
        installed and every training term has a span, else ``"dictionary"``), ``"trained"`` (a token tagger, as in
        ``extract``, fine-tuned on the training terms: it finds terms it never saw),
        ``"dictionary"`` (the terms marked in training, found again) or the folder of a
        saved ``extract`` model.
    random_state : int, default=0
    """

    name = "setfit"
    supported_tasks = frozenset({Task.ACSA, Task.ATSA, Task.RATING})
    batch_size = 512
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {
        "rating_model": ("classify", "regress"),
        "num_iterations": "count",
        "max_steps": "count",
        "train_batch_size": "count",
        "max_length": "count",
        "negative_ratio": "positive",
        "C": "positive",
    }

    def __init__(
        self,
        *,
        encoder: str | None = None,
        examples_per_class: int | None = None,
        negative_ratio: float = 0.5,
        num_iterations: int = 20,
        max_steps: int = 500,
        train_batch_size: int = 16,
        max_length: int = 128,
        C: float = 1.0,
        rating_model: str = "classify",
        term_finder: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.encoder = encoder
        self.examples_per_class = examples_per_class
        self.negative_ratio = negative_ratio
        self.num_iterations = num_iterations
        self.max_steps = max_steps
        self.train_batch_size = train_batch_size
        self.max_length = max_length
        self.C = C
        self.rating_model = rating_model
        self.term_finder = term_finder
        self.random_state = random_state

    @property
    def model_name(self) -> str:
        """The encoder: the one given, else the default for the training language."""
        return self.encoder or default_encoder(getattr(self, "language_", None))

    # ----- the body: contrastive training and encoding -----------------------------------------

    def _train_body(self, texts: list[str], labels: list[int]) -> None:
        prepare_transformers()
        from sentence_transformers import SentenceTransformer
        from setfit import SetFitModel, Trainer, TrainingArguments
        from setfit import logging as setfit_logging
        from sklearn.linear_model import LogisticRegression
        from transformers import PrinterCallback, ProgressCallback, TrainerCallback

        setfit_logging.set_verbosity_warning()  # its INFO banners would interleave with our progress bar

        self.body_ = SentenceTransformer(str(resolve_encoder(self.model_name)), device="cpu")
        self.body_.max_seq_length = self.max_length
        # setfit draws 2 * num_iterations pairs per example; max_steps only caps that (the
        # underlying trainer would otherwise loop over the pairs until max_steps)
        steps = min(self.max_steps, math.ceil(2 * self.num_iterations * len(texts) / self.train_batch_size))
        with tempfile.TemporaryDirectory(prefix="topicsent-setfit-") as scratch, progress_bar(
            f"{self.name}: contrastive training on {len(texts):,} examples", total=steps
        ) as advance:  # fmt: skip

            class Advance(TrainerCallback):
                def on_step_end(self, args, state, control, **kwargs):
                    advance(1)

            args = TrainingArguments(
                batch_size=self.train_batch_size, num_epochs=1, num_iterations=self.num_iterations,
                max_steps=steps, seed=self.random_state, output_dir=scratch, report_to="none",
                show_progress_bar=False, save_strategy="no", logging_strategy="no", max_length=self.max_length,
            )  # fmt: skip
            trainer = Trainer(model=SetFitModel(model_body=self.body_, model_head=LogisticRegression()), args=args)
            for printer in (PrinterCallback, ProgressCallback):  # they print raw loss dicts; the bar shows progress
                trainer.remove_callback(printer)
            trainer.add_callback(Advance())
            with warnings.catch_warnings():  # its data loader asks for pinned memory, which a CPU ignores
                warnings.filterwarnings("ignore", message=".*pin_memory.*")
                trainer.train_embeddings(texts, labels, args=args)
        self.body_.eval()

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = []
        with progress_bar(f"{self.name}: encode", total=len(texts)) as advance:
            for start in range(0, len(texts), ENCODE_BATCH * 8):
                chunk = texts[start : start + ENCODE_BATCH * 8]
                vectors.append(self.body_.encode(chunk, batch_size=ENCODE_BATCH, show_progress_bar=False, convert_to_numpy=True))
                advance(len(chunk))
        return np.concatenate(vectors) if vectors else np.empty((0, self.body_.get_sentence_embedding_dimension()))

    # ----- aspects -----------------------------------------------------------------------------

    def _fit_pair_model(self, examples: list[Example], targets: np.ndarray, review_ids: list[str]) -> None:
        texts = [_joined(example) for example in examples]
        self._train_body(texts, [int(t) for t in targets])
        self.head_ = fit_classifier(self._embed(texts), targets, C=self.C, seed=self.random_state)

    def _pair_model_proba(self, examples: list[Example]) -> np.ndarray:
        proba = self.head_.predict_proba(self._embed([_joined(example) for example in examples]))
        full = np.zeros((len(examples), len(self.pair_classes_)))  # a class few-shot sampling left out stays at 0
        full[:, [int(c) for c in self.head_.classes]] = proba
        return full

    # ----- ratings -----------------------------------------------------------------------------

    def _fit_rating(self, reviews: Sequence[Review], ratings: np.ndarray) -> None:
        sampled, ratings = self._rating_sample(reviews, ratings)
        texts = [review.text for review in sampled]
        self._train_body(texts, [int(r) for r in ratings])
        self.head_ = fit_rater(self._embed(texts), ratings, mode=self.rating_model, C=self.C, seed=self.random_state)

    def _rating_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        if self.rating_model == "regress":
            return super()._rating_proba(reviews)
        return rating_proba(self.head_, self._embed([r.text for r in reviews]), self.classes_)

    def _predict_rating(self, reviews: Sequence[Review]) -> tuple[np.ndarray, np.ndarray | None]:
        return predict_ratings(self.head_, self._embed([r.text for r in reviews]), self.classes_)

    # ----- persistence: the body as safetensors, the head as arrays ----------------------------

    def _save_models(self, directory: Path) -> None:
        self.body_.save(str(directory / BODY_DIR), safe_serialization=True)
        save_models(directory / HEAD_FILE, {"head": self.head_})

    def _load_models(self, directory: Path) -> None:
        prepare_transformers()
        from sentence_transformers import SentenceTransformer

        body_dir = directory / BODY_DIR
        if not list(body_dir.glob("*.safetensors")):
            raise ValueError(f"{body_dir}: no safetensors weights")
        self.body_ = SentenceTransformer(str(body_dir), device="cpu").eval()
        self.head_ = load_models(directory / HEAD_FILE)[0]["head"]
