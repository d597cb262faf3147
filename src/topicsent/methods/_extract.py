"""``extract``: open-domain aspect term extraction, opinions and triplets (ATSA).

A fine-tuned encoder tags aspect terms and opinion terms (BIO) and pairs them
(:mod:`topicsent.methods._tagger`): it finds terms it never saw in training, gives each
its polarity, and, trained on triplet data (``aste-14res``), the opinion that carries
it (``opinion``/``opinion_span`` of the answer: the evidence of why).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from topicsent.data import Review, ReviewSet
from topicsent.errors import InvalidParameterError
from topicsent.methods._base import BaseMethod
from topicsent.methods._finetuning import DEVICES, PRECISIONS, base_licence
from topicsent.methods._pipeline import overall_from_aspects
from topicsent.methods._tagger import TermTagger
from topicsent.methods._terms import trained_tagger
from topicsent.schema import AspectSentiment, Overall, ReviewAnalysis, Span, Task


class ExtractMethod(BaseMethod):
    """Aspect terms (and opinion terms) found by a fine-tuned token tagger, with polarities.

    Parameters
    ----------
    base : str, default="all-MiniLM-L6-v2"
        Packaged encoder name (``all-mpnet-base-v2`` for the best English results,
        ``multilingual-e5-small`` for Korean) or a local model directory.
    epochs : int, default=5
        Most epochs; early stopping on 10% held-out training reviews keeps the best.
    patience : int, default=2
    train_batch_size : int, default=16
    learning_rate : float, default=5e-5
        Encoder rate; the new heads train at 1e-3.
    max_length : int, default=128
        Tokens per review; terms past it are not found.
    hidden : int, default=256
        Hidden units of the polarity and pair heads.
    device : {"auto", "cpu", "cuda"} or "cuda:N", default="auto"
    precision : {"auto", "fp32", "bf16"}, default="auto"
    random_state : int, default=0

    Examples
    --------
    >>> from topicsent.methods import make_method
    >>> make_method("extract", epochs=1).get_params()["base"]
    'all-MiniLM-L6-v2'
    """

    name = "extract"
    supported_tasks = frozenset({Task.ATSA})
    batch_size = 256
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {
        "base": "text", "epochs": "count", "patience": "count", "train_batch_size": "count", "learning_rate": "positive",
        "max_length": "count", "hidden": "count", "precision": PRECISIONS, "random_state": "index",
    }  # fmt: skip

    def __init__(
        self,
        *,
        base: str = "all-MiniLM-L6-v2",
        epochs: int = 5,
        patience: int = 2,
        train_batch_size: int = 16,
        learning_rate: float = 5e-5,
        max_length: int = 128,
        hidden: int = 256,
        device: str = "auto",
        precision: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.base = base
        self.epochs = epochs
        self.patience = patience
        self.train_batch_size = train_batch_size
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.hidden = hidden
        self.device = device
        self.precision = precision
        self.random_state = random_state

    @property
    def model_name(self) -> str:
        return f"{self.base} (term tagger)"

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.device not in DEVICES and not re.fullmatch(r"cuda:\d+", str(self.device)):
            raise InvalidParameterError(
                f"The 'device' parameter of {type(self).__name__} must be one of {DEVICES} or 'cuda:N'. Got {self.device!r}."
            )

    def new_tagger(self) -> TermTagger:
        """An unfitted tagger with this method's parameters (also the ``"trained"`` term
        finder of other ATSA methods, with the defaults)."""
        return TermTagger(
            base=self.base, epochs=self.epochs, patience=self.patience, train_batch_size=self.train_batch_size,
            learning_rate=self.learning_rate, max_length=self.max_length, hidden=self.hidden, device=self.device,
            precision=self.precision, seed=self.random_state,
        )  # fmt: skip

    def _fit(self, reviews: ReviewSet) -> None:
        self.tagger_ = trained_tagger(self.new_tagger(), reviews)  # shared with the ATSA methods that train the same one

    def _predict(self, reviews: Sequence[Review], *, given_aspects: bool) -> list[ReviewAnalysis]:
        given = [[(a.start, a.end) for a in r.aspects] for r in reviews] if given_aspects else None
        found = self.tagger_.find([r.text for r in reviews], given)
        analyses = []
        for review, result in zip(reviews, found, strict=True):
            names = [a.name for a in review.aspects] if given_aspects else None
            aspects = [
                answer
                for t, (start, end) in enumerate(result.terms)
                for answer in self._answers(review.text, names[t] if names else review.text[start:end], (start, end),
                                            result.polarity[t], result.links[t] if not given_aspects else result.links[t][:1])
            ]  # fmt: skip
            reason = None if aspects or given_aspects else "no aspect term found by the term tagger"
            overall = Overall(polarity=overall_from_aspects(aspects))
            analyses.append(self._analysis(review, overall=overall, aspects=aspects, status_reason=reason))
        return analyses

    def _answers(self, text: str, name: str, span: tuple[int, int], polarity: np.ndarray, links) -> list[AspectSentiment]:
        """One answer per opinion linked to the term (a triplet each; its polarity from the
        pair), or one from the term's own polarity head when no opinion is linked."""
        classes = self.tagger_.polarities_
        term = {"aspect": name, "kind": "term", "evidence": text[span[0] : span[1]], "span": Span(start=span[0], end=span[1])}
        if not links:
            best = int(np.argmax(polarity))
            return [AspectSentiment(**term, polarity=classes[best], confidence=float(np.clip(polarity[best], 0, 1)))]
        return [
            AspectSentiment(
                **term,
                polarity=classes[int(np.argmax(p))],
                confidence=float(np.clip(p.max(), 0, 1)),
                opinion=text[start:end],
                opinion_span=Span(start=start, end=end),
            )
            for (start, end), p in links
        ]

    def _save_state(self, directory: Path) -> None:
        self.tagger_.save(directory)
        (directory / "README.md").write_text(
            f"# topicsent `extract` model\n\nBase `{self.base}` (licence: {base_licence(self.base)}), fine-tuned as a "
            f"term tagger; polarities {', '.join(self.tagger_.polarities_)}; opinions "
            f"{'learned' if self.tagger_.learns_opinions_ else 'not in the training data'}.\n",
            encoding="utf-8",
        )

    def _load_state(self, directory: Path) -> None:
        self.tagger_ = self.new_tagger().load(directory)
