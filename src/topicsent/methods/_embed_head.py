"""A frozen sentence encoder as feature extractor, with small trained heads.

The "repurposed language model" approach: the encoder is never trained, so training
is cheap, and the encoder's cost is paid once per review thanks to the embedding
cache. Two designs for aspects:

- ``attention`` (default): one encoder pass per review; an aspect-conditioned
  attention head pools the token vectors differently per category or term.
- ``pair``: one encoder pass per (review, aspect) pair on ``"aspect: review"``, with
  a logistic-regression head: simpler, but its cost grows with the number of aspects.

Ratings use the mean-pooled sentence vector with logistic regression or ridge.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from topicsent.data import Review
from topicsent.encoders import default_encoder
from topicsent.errors import InvalidParameterError
from topicsent.methods._files import load_tensors
from topicsent.methods._linear import (
    fit_binary,
    fit_classifier,
    fit_rater,
    pipeline_models,
    predict_ratings,
    rating_proba,
    restore_pipeline_models,
    save_models,
)
from topicsent.methods._pipeline import AspectPipelineMethod, Pair
from topicsent.schema import Task

HEADS_FILE = "heads.safetensors"
LINEAR_FILE = "linear.npz"
HEAD_BATCH = 128
HELD_OUT = 0.1  # share of training reviews kept aside for early stopping


class EmbedHeadMethod(AspectPipelineMethod):
    """Frozen transformer encoder + trained heads (attention pooling per aspect, or pair encoding).

    Parameters
    ----------
    encoder : str or None, default=None
        A packaged encoder name, or a local model directory (safetensors weights);
        None: the default encoder of the training data's language
        (``all-MiniLM-L6-v2`` for English, ``multilingual-e5-small`` for Korean and others).
        For Korean: ``multilingual-e5-small`` (its 4-bit engine for sentence vectors;
        rebuilt as a transformers model for the attention design's token vectors) or
        ``multilingual-use`` (sentence vectors only: ratings, and ``design="pair"``).
    design : {"attention", "pair"}, default="attention"
        How aspects meet the encoder (see the module docstring).
    max_length : int, default=128
        Tokens per review given to the encoder (longer reviews are truncated).
    quantize : bool, default=False
        int8 dynamic quantisation of the encoder's linear layers: faster encoding on
        CPU at a small cost in vector fidelity (transformer encoders only).
    hidden : int, default=256
        Hidden units of the attention heads.
    epochs : int, default=40
        Most epochs of head training; early stopping on held-out training reviews.
    learning_rate : float, default=2e-3
    C : float, default=1.0
        Inverse regularisation of the linear heads (pair design, ratings).
    rating_model : {"classify", "regress"}, default="classify"
    term_finder : str, default="auto"
        ATSA, for reviews that come without terms: ``"auto"`` (``"trained"`` when torch is
        installed and every training term has a span, else ``"dictionary"``), ``"trained"`` (a token tagger, as in
        ``extract``, fine-tuned on the training terms: it finds terms it never saw),
        ``"dictionary"`` (the terms marked in training, found again) or the folder of a
        saved ``extract`` model.
    random_state : int, default=0
    """

    name = "embed-head"
    supported_tasks = frozenset({Task.ACSA, Task.ATSA, Task.RATING})
    tuning_grid: ClassVar[dict[str, list[Any]]] = {"learning_rate": [1e-3, 3e-3]}
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {
        "design": ("attention", "pair"),
        "quantize": (False, True),
        "rating_model": ("classify", "regress"),
        "max_length": "count",
        "hidden": "count",
        "epochs": "count",
        "learning_rate": "positive",
        "C": "positive",
    }
    batch_size = 512

    def __init__(
        self,
        *,
        encoder: str | None = None,
        design: str = "attention",
        max_length: int = 128,
        quantize: bool = False,
        hidden: int = 256,
        epochs: int = 40,
        learning_rate: float = 2e-3,
        C: float = 1.0,
        rating_model: str = "classify",
        term_finder: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.encoder = encoder
        self.design = design
        self.max_length = max_length
        self.quantize = quantize
        self.hidden = hidden
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.C = C
        self.rating_model = rating_model
        self.term_finder = term_finder
        self.random_state = random_state

    @classmethod
    def param_grid(cls, task: Task) -> dict[str, list[Any]]:
        if task is Task.RATING:
            return {"C": [1.0, 10.0], "rating_model": ["classify", "regress"]}
        return cls.tuning_grid

    @property
    def model_name(self) -> str:
        """The encoder: the one given, else the default for the training language."""
        return self.encoder or default_encoder(getattr(self, "language_", None))

    @property
    def encoder_(self):
        """The frozen encoder, loaded on first use (not saved: it is referenced by name/path)."""
        if getattr(self, "_encoder", None) is None:
            from topicsent.encoders import make_encoder

            tokens = self.design == "attention" and getattr(self, "task_", Task.RATING) is not Task.RATING
            self._encoder = make_encoder(self.model_name, max_length=self.max_length, quantize=self.quantize, tokens=tokens)
        return self._encoder

    # ----- ratings: mean-pooled vectors + linear model ----------------------------------------

    def _sentences(self, reviews: Sequence[Review]) -> np.ndarray:
        return self.encoder_.sentences([r.text for r in reviews])

    def _fit_rating(self, reviews: Sequence[Review], ratings: np.ndarray) -> None:
        self.rating_model_ = fit_rater(
            self._sentences(reviews), ratings, mode=self.rating_model, C=self.C, seed=self.random_state
        )

    def _rating_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        if self.rating_model == "regress":
            return super()._rating_proba(reviews)
        return rating_proba(self.rating_model_, self._sentences(reviews), self.classes_)

    def _predict_rating(self, reviews: Sequence[Review]) -> tuple[np.ndarray, np.ndarray | None]:
        return predict_ratings(self.rating_model_, self._sentences(reviews), self.classes_)

    # ----- pair design: "aspect: review" sentence vectors + linear models -----------------------

    def _pair_vectors(self, pairs: Sequence[Pair]) -> np.ndarray:
        return self.encoder_.sentences([f"{aspect.name}: {review.text}" for review, aspect in pairs])

    # ----- attention design: token vectors + aspect-conditioned heads --------------------------

    def _new_head(self, n_outputs: int):
        from topicsent.methods._heads import AspectAttentionHead

        return AspectAttentionHead(self.encoder_.dim, n_outputs, n_categories=len(self.categories), hidden=self.hidden)

    def _token_table(self, reviews: Sequence[Review]) -> dict[str, Any]:
        """Token vectors of every distinct review text, encoded (or read from the cache)
        once, so training epochs and heads share them."""
        texts = list(dict.fromkeys(review.text for review in reviews))
        return dict(zip(texts, self.encoder_.tokens(texts), strict=True))

    def _head_inputs(self, items: Sequence[Any], table: dict[str, Any]) -> dict[str, Any]:
        """Head inputs. ACSA items are reviews (the head scores all categories in one
        pass); ATSA items are (review, term) pairs, each with its term vector."""
        import torch

        from topicsent.methods._heads import pad_tokens, term_vector

        if self.task_ is Task.ACSA:
            vectors, mask = pad_tokens([table[review.text] for review in items])
            return {"tokens": vectors, "mask": mask}
        tokens = [table[review.text] for review, _ in items]
        vectors, mask = pad_tokens(tokens)
        terms = np.stack([
            term_vector(item, a.start, a.end) if a.start is not None else item.mean()
            for item, (_, a) in zip(tokens, items, strict=True)
        ])  # fmt: skip
        return {"tokens": vectors, "mask": mask, "terms": torch.from_numpy(terms)}

    def _reviews_of(self, items: Sequence[Any]) -> list[Review]:
        return list(items) if self.task_ is Task.ACSA else [review for review, _ in items]

    def _train_attention_head(self, items: list[Any], targets: np.ndarray, n_outputs: int, description: str):
        """Train a head on items (reviews or pairs), holding out a seeded 10% of reviews
        for early stopping. Polarity targets of -1 (a category the review does not
        mention) are ignored by the loss."""
        import torch
        from torch import nn

        from topicsent.methods._heads import train_head

        reviews = self._reviews_of(items)
        review_ids = sorted({review.id for review in reviews})
        held = set(random.Random(self.random_state).sample(review_ids, max(1, int(len(review_ids) * HELD_OUT))))
        train_rows = [i for i, review in enumerate(reviews) if review.id not in held]
        held_rows = [i for i, review in enumerate(reviews) if review.id in held]
        binary = n_outputs == 1
        table = self._token_table(reviews)
        target_tensor = torch.tensor(targets, dtype=torch.float32 if binary else torch.long)
        base_loss = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss(ignore_index=-1)

        def loss(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            if binary:
                return base_loss(outputs.reshape(target.shape), target)
            return base_loss(outputs.reshape(-1, outputs.shape[-1]), target.reshape(-1))

        def batches(rows: list[int], shuffle_seed: int | None) -> Iterator[tuple[dict, Any]]:
            order = list(rows)
            if shuffle_seed is not None:
                random.Random(shuffle_seed).shuffle(order)
            for start in range(0, len(order), HEAD_BATCH):
                chunk = order[start : start + HEAD_BATCH]
                yield self._head_inputs([items[i] for i in chunk], table), target_tensor[chunk]

        torch.manual_seed(self.random_state)
        head = self._new_head(n_outputs)
        train_head(
            head, lambda epoch: batches(train_rows, self.random_state + epoch),
            loss_fn=loss, epochs=self.epochs, learning_rate=self.learning_rate,
            validation=list(batches(held_rows, None)), description=description,
        )  # fmt: skip
        return head

    def _head_outputs(self, head, items: Sequence[Any]) -> np.ndarray:
        import torch

        outputs, table = [], self._token_table(self._reviews_of(items))
        with torch.no_grad():
            for start in range(0, len(items), HEAD_BATCH):
                outputs.append(head(**self._head_inputs(items[start : start + HEAD_BATCH], table)).numpy())
        return np.concatenate(outputs)

    def _category_rows(self, pairs: Sequence[Pair]) -> tuple[list[Review], list[int], list[int]]:
        """ACSA pairs as (distinct reviews, review row of each pair, category of each pair)."""
        row_of: dict[str, int] = {}
        reviews = []
        for review, _ in pairs:
            if review.id not in row_of:
                row_of[review.id] = len(reviews)
                reviews.append(review)
        index = self.category_index
        return reviews, [row_of[r.id] for r, _ in pairs], [index[a.name] for _, a in pairs]

    # ----- polarity and detection, by design ----------------------------------------------------

    def _fit_polarity(self, pairs: list[Pair], labels: list[str]) -> None:
        if self.design == "attention" and not self.encoder_.gives_tokens:
            raise InvalidParameterError(
                f"encoder {self.model_name!r} gives sentence vectors only; use design='pair' with it for {self.task_.value}"
            )
        self.polarity_classes_ = sorted(set(labels))
        if self.design == "pair":
            self.polarity_model_ = fit_classifier(self._pair_vectors(pairs), labels, C=self.C, seed=self.random_state)
            self.polarity_classes_ = [str(c) for c in self.polarity_model_.classes]
            return
        label_ids = np.array([self.polarity_classes_.index(label) for label in labels])
        if self.task_ is Task.ACSA:
            reviews, rows, categories = self._category_rows(pairs)
            targets = np.full((len(reviews), len(self.categories)), -1)
            targets[rows, categories] = label_ids
            self.polarity_head_ = self._train_attention_head(reviews, targets, len(self.polarity_classes_), "train polarity head")
        else:
            self.polarity_head_ = self._train_attention_head(pairs, label_ids, len(self.polarity_classes_), "train polarity head")

    def _polarity_proba(self, pairs: list[Pair]) -> np.ndarray:
        if self.design == "pair":
            return self.polarity_model_.predict_proba(self._pair_vectors(pairs))
        from scipy.special import softmax

        if self.task_ is Task.ACSA:
            reviews, rows, categories = self._category_rows(pairs)
            return softmax(self._head_outputs(self.polarity_head_, reviews)[rows, categories], axis=1)
        return softmax(self._head_outputs(self.polarity_head_, pairs), axis=1)

    def _fit_detector(self, reviews: Sequence[Review], mentioned: np.ndarray) -> None:
        if self.design == "pair":  # one model per category, each on its own "category: review" vectors
            vectors = self._category_pair_vectors(reviews)
            self.detector_models_ = [
                fit_binary(vectors[:, c], mentioned[:, c], C=self.C, seed=self.random_state) for c in range(len(self.categories))
            ]
            return
        self.detector_head_ = self._train_attention_head(list(reviews), mentioned, 1, "train detection head")

    def _detect_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        if self.design == "pair":
            vectors = self._category_pair_vectors(reviews)
            return np.column_stack([model.predict_proba(vectors[:, c])[:, 1] for c, model in enumerate(self.detector_models_)])
        from scipy.special import expit

        return expit(self._head_outputs(self.detector_head_, list(reviews))[:, :, 0])

    def _category_pair_vectors(self, reviews: Sequence[Review]) -> np.ndarray:
        """``"category: review"`` vectors for every review and category, ``(n, n_categories, dim)``."""
        from topicsent.data import AspectLabel

        pairs = [(review, AspectLabel(name)) for review in reviews for name in self.categories]
        return self._pair_vectors(pairs).reshape(len(reviews), len(self.categories), -1)

    # ----- persistence: heads as safetensors, linear models as arrays ---------------------------

    def _save_models(self, directory: Path) -> None:
        if linear := pipeline_models(self, detectors="detector_models_"):
            save_models(directory / LINEAR_FILE, linear)
        heads = {name: getattr(self, f"{name}_head_") for name in ("polarity", "detector") if hasattr(self, f"{name}_head_")}
        if heads:
            from safetensors.torch import save_file

            save_file(
                {f"{name}.{k}": v.contiguous() for name, head in heads.items() for k, v in head.state_dict().items()},
                directory / HEADS_FILE,
            )

    def _load_models(self, directory: Path) -> None:
        if (directory / LINEAR_FILE).is_file():
            restore_pipeline_models(self, directory / LINEAR_FILE, detectors="detector_models_")
        if (directory / HEADS_FILE).is_file():
            weights = load_tensors(directory / HEADS_FILE)
            for name, n_outputs in (("polarity", len(getattr(self, "polarity_classes_", []))), ("detector", 1)):
                state = {k.removeprefix(f"{name}."): v for k, v in weights.items() if k.startswith(f"{name}.")}
                if state:
                    head = self._new_head(n_outputs)
                    head.load_state_dict(state)
                    setattr(self, f"{name}_head_", head.eval())
