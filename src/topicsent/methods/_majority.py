"""The majority baseline: what a method reaches without reading the text.

Every number another method reports is worth only as much as its distance from this.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from topicsent.data import Review
from topicsent.errors import ModelFileError
from topicsent.methods._files import check_array, read_json
from topicsent.methods._pipeline import AspectPipelineMethod, Pair
from topicsent.schema import Task

STATE_FILE = "majority.json"


class MajorityMethod(AspectPipelineMethod):
    """Predicts the most frequent training label for everything.

    Polarity: the most frequent polarity over all training aspects. Detection: the
    categories mentioned in at least half of the training reviews. Rating: the most
    frequent rating. Terms (ATSA): the terms seen in training, found in the text.

    Parameters
    ----------
    term_finder : str, default="auto"
        ATSA, for reviews that come without terms: ``"auto"`` (``"trained"`` when torch is
        installed and every training term has a span, else ``"dictionary"``), ``"trained"`` (a token tagger, as in
        ``extract``, fine-tuned on the training terms: it finds terms it never saw),
        ``"dictionary"`` (the terms marked in training, found again) or the folder of a
        saved ``extract`` model.
    random_state : int, default=0
        Unused (the method has no randomness); kept so every method takes a seed.
    """

    name = "majority"
    supported_tasks = frozenset({Task.ACSA, Task.ATSA, Task.RATING})
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {"random_state": "index"}

    def __init__(self, *, term_finder: str = "auto", random_state: int = 0) -> None:
        self.term_finder = term_finder
        self.random_state = random_state

    def _fit_polarity(self, pairs: list[Pair], labels: list[str]) -> None:
        counts = Counter(labels)
        self.polarity_classes_ = [p for p in self.label_space_.polarities if counts[p]]
        self.polarity_prior_ = np.array([counts[p] / len(labels) for p in self.polarity_classes_])

    def _polarity_proba(self, pairs: list[Pair]) -> np.ndarray:
        return np.tile(self.polarity_prior_, (len(pairs), 1))

    def _fit_detector(self, reviews: Sequence[Review], mentioned: np.ndarray) -> None:
        self.mention_prior_ = mentioned.mean(axis=0)

    def _detect_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        return np.tile(self.mention_prior_, (len(reviews), 1))

    def _fit_rating(self, reviews: Sequence[Review], ratings: np.ndarray) -> None:
        counts = Counter(ratings.tolist())
        self.rating_prior_ = np.array([counts[c] / len(ratings) for c in self.classes_.tolist()])

    def _rating_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        return np.tile(self.rating_prior_, (len(reviews), 1))

    def _predict_rating(self, reviews: Sequence[Review]) -> tuple[np.ndarray, np.ndarray | None]:
        proba = self._rating_proba(reviews)
        return self.classes_[proba.argmax(axis=1)], proba.max(axis=1)

    def _save_models(self, directory: Path) -> None:
        priors = {
            name: getattr(self, attribute).tolist()
            for name, attribute in (("polarity", "polarity_prior_"), ("mention", "mention_prior_"), ("rating", "rating_prior_"))
            if hasattr(self, attribute)
        }
        (directory / STATE_FILE).write_text(json.dumps(priors), encoding="utf-8")

    def _load_models(self, directory: Path) -> None:
        path = directory / STATE_FILE
        priors = read_json(path, dict[str, list[float]])
        # each prior is a probability per polarity class, category or rating of the saved state
        expected = {"rating": len(self.classes_)} if self.task_ is Task.RATING else {"polarity": len(self.polarity_classes_)}
        if self.task_ is Task.ACSA:
            expected["mention"] = len(self.categories)
        for name, length in expected.items():
            prior = check_array(path, name, priors.get(name, []), ndim=1, length=length)
            if not ((prior >= 0) & (prior <= 1)).all():
                raise ModelFileError(f"{path}: damaged model file ({name!r} holds a value outside [0, 1])")
            setattr(self, f"{name}_prior_", prior)
