"""A stack: several trained methods whose probabilities a small model combines.

Methods err on different reviews (a TF-IDF model trusts words, an encoder meaning),
so a combination learned on reviews none of them trained on beats the best of them
more often than not. This is multinomial stacking (Wolpert 1992, "Stacked
generalization"; Ting & Witten 1999 showed that class probabilities, not labels, are
what the combiner should see): the members train on most of the training reviews, a
logistic regression learns from their log-probabilities on a seeded held-out part,
and then (``refit=True``) the members train again on all the reviews.

The stack is itself an aspect pipeline: each of its parts (pair polarity, category
detection, rating) combines the same part of every member, so prediction, term
extraction (ATSA) and persistence are the shared ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy.special import logit
from typing_extensions import TypedDict  # pydantic reads a TypedDict from here before Python 3.12

from topicsent.data import Review, ReviewSet
from topicsent.errors import InvalidParameterError, UnsupportedTaskError
from topicsent.methods._base import BaseMethod
from topicsent.methods._cascade import split_holdout
from topicsent.methods._files import read_json
from topicsent.methods._linear import (
    LinearModel,
    pipeline_models,
    predict_ratings,
    rating_proba,
    restore_pipeline_models,
    save_models,
)
from topicsent.methods._pipeline import AspectPipelineMethod, Pair
from topicsent.methods._registry import item_spec, method_class, method_list, parse_method_spec, seeded_method
from topicsent.methods._terms import DICTIONARY
from topicsent.schema import Task

MEMBER_SEPARATOR = "+"
ARRAYS_FILE = "stack.npz"
STATE_FILE = "stack.json"
#: Probabilities are clipped to [EPS, 1 - EPS] before the log: a member that is sure
#: (or lacks a class) must not give the combiner an infinite feature.
EPS = 1e-6


class _StackState(TypedDict):
    member_polarities: list[str]
    holdout_report: dict[str, Any]


def log_proba(proba: np.ndarray, have: Sequence, want: Sequence) -> np.ndarray:
    """Clipped log-probabilities with columns ``want`` from columns ``have`` (a class a
    member never saw gets probability EPS; one the stack does not know is dropped)."""
    aligned = np.full((len(proba), len(want)), EPS)
    position = {label: i for i, label in enumerate(have)}
    for column, label in enumerate(want):
        if label in position:
            aligned[:, column] = proba[:, position[label]]
    return np.log(np.clip(aligned, EPS, 1.0))


def fit_combiner(features: np.ndarray, targets: np.ndarray, *, C: float, part: str) -> LinearModel:
    """A multinomial logistic regression (lbfgs: exact and seedless on a few dense
    columns); a yes/no target that never varies stays a constant. Two or more classes
    are needed for ``part`` (polarity, rating), else :class:`InvalidParameterError`."""
    from sklearn.linear_model import LogisticRegression

    found = np.unique(targets)
    if len(found) < 2:
        if part == "detection":
            return LinearModel.constant(features.shape[1], positive=bool(found[0]))
        raise InvalidParameterError(
            f"the stack's held-out reviews carry only the {part} {found.tolist()}; "
            "the combiner needs two: train on more reviews or raise 'holdout'"
        )
    return LinearModel.from_sklearn(LogisticRegression(C=C, max_iter=1000).fit(features, targets))


class StackMethod(AspectPipelineMethod):
    """An ensemble: members' probabilities combined by a model learned on held-out reviews.

    Multinomial stacking (Wolpert 1992): logistic regressions learned on a held-out share.

    The combiner sees, for a (review, aspect) pair, every member's log-probability of
    each polarity; for a category, every member's mention logit of that category (one
    small model per category); for a rating, every member's log-probability of each
    rating. It learns how far to trust each member, and where: a member better at
    ``negative`` gets the weight there.

    Parameters
    ----------
    members : str or list of (str or BaseMethod), default="tfidf-lr+embed-head"
        Two or more method specs separated by ``+``, e.g.
        ``tfidf-lr+finetune[design=attention,epochs=4]``, or a list of method objects
        (or specs); each trains as a clone, and a saved stack writes object members as
        specs. Members must give class
        probabilities: aspect-pipeline methods (``majority``, ``tfidf-lr``,
        ``embed-head``, ``finetune``, ``setfit``, ``lda``; for ratings not with
        ``rating_model=regress`` nor supervised ``lda``). ``llm``, ``sft`` and
        ``cascade`` answer labels and are refused before any training.
    holdout : float, default=0.2
        Share of the training reviews (seeded) the members do not train on at first;
        the combiner learns from the members' answers there.
    refit : bool, default=True
        Train the members again on all the training reviews once the combiner is
        learned: each member trains twice (about 1 + (1 - holdout) times its own
        training time), for members that saw every review. ``False`` keeps the members
        trained without the held-out share (training once).
    C : float, default=1.0
        Inverse regularisation of the combiner's logistic regressions.
    term_finder : str, default="auto"
        ATSA, for reviews that come without terms: ``"auto"`` (``"trained"`` when torch is
        installed and every training term has a span, else ``"dictionary"``), ``"trained"`` (a token tagger, as in
        ``extract``, fine-tuned on the training terms: it finds terms it never saw),
        ``"dictionary"`` (the terms marked in training, found again) or the folder of a
        saved ``extract`` model.
    random_state : int, default=0
        Seed of the hold-out split, passed to members whose spec sets no seed.

    Attributes
    ----------
    members_ : list of AspectPipelineMethod
        The fitted members, in ``members`` order.
    polarity_model_, rating_model_ : LinearModel
        The combiners of the pair polarity and of the rating (whichever the task has).
    detectors_ : list of LinearModel
        ACSA: one mention combiner per category, in taxonomy order.
    member_polarities_ : list of str
        The polarity columns read from every member (the union of what they learned).
    holdout_report_ : dict
        The held-out reviews and each member's accuracy on them (polarity of the gold
        aspects, or rating), to see what each member brings.

    Raises
    ------
    InvalidParameterError
        In ``fit``: fewer than two members, a member without class probabilities, a
        ``holdout`` outside (0, 1), or held-out reviews with a single polarity/rating.
    UnsupportedTaskError
        In ``fit``: a member that does not do the task.

    Examples
    --------
    >>> from topicsent.methods import make_method
    >>> stack = make_method("stack", members="tfidf-lr+tfidf-lr[analyzer=char]")
    >>> stack.member_specs()
    ['tfidf-lr', 'tfidf-lr[analyzer=char]']
    """

    name = "stack"
    supported_tasks = frozenset({Task.ACSA, Task.ATSA, Task.RATING})
    nested_methods: ClassVar[dict[str, str]] = {"members": MEMBER_SEPARATOR}  # saved as spec text
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {
        "holdout": "share",
        "refit": (True, False),
        "C": "positive",
        "random_state": "index",
    }

    def __init__(
        self,
        *,
        members: str | Sequence[str | BaseMethod] = "tfidf-lr+embed-head",
        holdout: float = 0.2,
        refit: bool = True,
        C: float = 1.0,
        term_finder: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.members = members
        self.holdout = holdout
        self.refit = refit
        self.C = C
        self.term_finder = term_finder
        self.random_state = random_state

    def member_specs(self) -> list[str]:
        """The member specs, split at ``+`` outside brackets (method objects written as their spec)."""
        return [item_spec(member) for member in self._member_list()]

    def _member_list(self) -> list:
        return method_list(self.members, MEMBER_SEPARATOR, owner="a stack", items="members")

    @property
    def model_name(self) -> str | None:
        """The members, e.g. ``tfidf-lr+finetune:all-mpnet-base-v2``."""
        members = getattr(self, "members_", [])
        return MEMBER_SEPARATOR.join(m.name + (f":{m.model_name}" if m.model_name else "") for m in members) or None

    def _validate_params(self) -> None:
        super()._validate_params()
        for member in self._member_list():
            kind = method_class(parse_method_spec(member)[0]) if isinstance(member, str) else type(member)
            if not issubclass(kind, AspectPipelineMethod):
                raise InvalidParameterError(
                    f"stack member {item_spec(member)!r} answers labels without class probabilities; "
                    "members are methods such as tfidf-lr, embed-head, finetune, setfit, majority"
                )

    # ----- fit ----------------------------------------------------------------------------

    def _fit(self, reviews: ReviewSet) -> None:
        members = self._new_members()
        training, held_out = split_holdout(reviews, self.holdout, self.random_state, who="a stack")
        self._fit_terms(reviews)  # from every training review, not the held-out's
        self.members_ = [member.fit(training, self.task_) for member in members]
        self.holdout_report_ = {"reviews": len(held_out), "members": self.member_specs(), "member_accuracy": []}
        self._fit_parts(held_out)  # the combiners learn from the members' answers on the held-out reviews
        if self.refit:
            self.members_ = []  # the hold-out-trained members go before their twins train
            self.members_ = [member.fit(reviews, self.task_) for member in self._new_members()]

    def _new_members(self) -> list[AspectPipelineMethod]:
        """Unfitted members, refused before any training when one cannot do the task or
        gives ratings without class probabilities."""
        members = [seeded_method(member, self.random_state) for member in self._member_list()]
        for spec, member in zip(self.member_specs(), members, strict=True):
            if "term_finder" in member.get_params():  # the stack finds terms itself: a member's finder would go unused
                member.set_params(term_finder=DICTIONARY)
            if self.task_ not in member.supported_tasks:
                raise UnsupportedTaskError(f"stack member {spec!r} does not do {self.task_.value}")
            if self.task_ is Task.RATING:
                try:  # the base class's way of saying "no class probabilities" needs no fitted state
                    member._rating_proba([])
                except InvalidParameterError as error:
                    raise InvalidParameterError(f"stack member {spec!r}: {error}; use one that classifies ratings") from None
                except AttributeError:  # an unfitted member that classifies: it reached for its model
                    pass
        return members

    def _report_accuracy(self, member_proba: list[np.ndarray], have: list[Sequence], targets: Sequence) -> None:
        """Each member's accuracy on the held-out answers, for ``holdout_report_``."""
        self.holdout_report_["member_accuracy"] = [
            float(np.mean(np.asarray(classes)[proba.argmax(axis=1)] == np.asarray(targets)))
            for proba, classes in zip(member_proba, have, strict=True)
        ]

    def _fit_polarity(self, pairs: list[Pair], labels: list[str]) -> None:
        learned = {p for member in self.members_ for p in member.polarity_classes_}
        self.member_polarities_ = [p for p in self.label_space_.polarities if p in learned]
        hidden = [(review.unlabelled(), replace(aspect, polarity=None)) for review, aspect in pairs]
        member_proba = [member._polarity_proba(hidden) for member in self.members_]
        self._report_accuracy(member_proba, [m.polarity_classes_ for m in self.members_], labels)
        features = self._polarity_features(member_proba)
        self.polarity_model_ = fit_combiner(features, np.array(labels), C=self.C, part="polarity")
        self.polarity_classes_ = [str(c) for c in self.polarity_model_.classes]

    def _fit_detector(self, reviews: Sequence[Review], mentioned: np.ndarray) -> None:
        logits = self._mention_logits(reviews)
        self.detectors_ = [
            fit_combiner(logits[:, :, c], mentioned[:, c], C=self.C, part="detection") for c in range(len(self.categories))
        ]

    def _fit_rating(self, reviews: Sequence[Review], ratings: np.ndarray) -> None:
        # the scale: the label space's, else every rating the members or the held-out reviews saw
        seen = np.union1d(np.concatenate([m.classes_ for m in self.members_]), ratings)
        self.classes_ = np.array(self.label_space_.ratings) if self.label_space_.ratings else seen
        member_proba = [member._rating_proba(list(reviews)) for member in self.members_]
        self._report_accuracy(member_proba, [m.classes_ for m in self.members_], ratings)
        features = self._rating_features(member_proba)
        self.rating_model_ = fit_combiner(features, ratings, C=self.C, part="rating")

    # ----- the combined parts -------------------------------------------------------------

    def _polarity_features(self, member_proba: list[np.ndarray]) -> np.ndarray:
        return np.hstack([
            log_proba(proba, member.polarity_classes_, self.member_polarities_)
            for proba, member in zip(member_proba, self.members_, strict=True)
        ])  # fmt: skip

    def _mention_logits(self, reviews: Sequence[Review]) -> np.ndarray:
        """Members' mention logits, shape ``(n_reviews, n_members, n_categories)``."""
        proba = np.stack([member._detect_proba(reviews) for member in self.members_], axis=1)
        return logit(np.clip(proba, EPS, 1.0 - EPS))

    def _rating_features(self, member_proba: list[np.ndarray]) -> np.ndarray:
        return np.hstack([
            log_proba(proba, member.classes_.tolist(), self.classes_.tolist())
            for proba, member in zip(member_proba, self.members_, strict=True)
        ])  # fmt: skip

    def _polarity_proba(self, pairs: list[Pair]) -> np.ndarray:
        member_proba = [member._polarity_proba(pairs) for member in self.members_]
        return self.polarity_model_.predict_proba(self._polarity_features(member_proba))

    def _detect_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        logits = self._mention_logits(reviews)
        return np.column_stack([model.predict_proba(logits[:, :, c])[:, 1] for c, model in enumerate(self.detectors_)])

    def _rating_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        features = self._rating_features([member._rating_proba(reviews) for member in self.members_])
        return rating_proba(self.rating_model_, features, self.classes_)

    def _predict_rating(self, reviews: Sequence[Review]) -> tuple[np.ndarray, np.ndarray | None]:
        features = self._rating_features([member._rating_proba(reviews) for member in self.members_])
        return predict_ratings(self.rating_model_, features, self.classes_)

    # ----- persistence: members in their own folders, the combiners as arrays (no pickle) ----

    def _save_models(self, directory: Path) -> None:
        for position, member in enumerate(self.members_):
            member.save(directory / f"member-{position}")
        save_models(directory / ARRAYS_FILE, pipeline_models(self))
        state = {"member_polarities": getattr(self, "member_polarities_", []), "holdout_report": self.holdout_report_}
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")

    def _load_models(self, directory: Path) -> None:
        state = read_json(directory / STATE_FILE, _StackState)
        self.member_polarities_, self.holdout_report_ = state["member_polarities"], state["holdout_report"]
        self.members_ = [BaseMethod.load(directory / f"member-{k}") for k in range(len(self._member_list()))]
        n_members = len(self.members_)
        if self.task_ is Task.RATING:
            widths = {"rating": n_members * len(self.classes_)}
        else:  # the combiners see every member's log-probability of each polarity, its logit of a category
            widths = {"polarity": n_members * len(self.member_polarities_)}
            widths |= {"detector": n_members} if self.task_ is Task.ACSA else {}
        restore_pipeline_models(self, directory / ARRAYS_FILE, widths)
