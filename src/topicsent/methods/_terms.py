"""Term finders: how an ATSA method finds aspect terms in a review that comes without them.

- ``"auto"`` (the default): ``"trained"`` where it can learn (torch installed, every
  training term with a span), else ``"dictionary"``, so a core install and term lists
  without offsets still train.
- ``"trained"``: a token tagger (:class:`~topicsent.methods._tagger.TermTagger`,
  the ``extract`` method's, with its default parameters) fine-tuned on the training
  reviews' term spans; it finds terms it never saw.
- ``"dictionary"``: a :class:`TermLexicon`, the terms annotators marked in training
  reviews found again (case-insensitive, whole words, longest first, no overlaps); the
  baseline.
- the folder of a saved ``extract`` model: its tagger, trained elsewhere.

Trained taggers are kept in memory under a fingerprint of their training data and
parameters, so the methods of one evaluation run, and the members of a stack or the
stages of a cascade, that train on the same reviews share one tagger instead of
training one each.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from topicsent.data import AspectLabel, OpinionLabel, Review, ReviewSet
from topicsent.errors import InputDataError, InvalidParameterError, ModelFileError

if TYPE_CHECKING:
    from topicsent.methods._tagger import TermTagger

_MIN_COUNT = 2  # a term marked once may be an annotator's one-off
TRAINED, DICTIONARY, AUTO = "trained", "dictionary", "auto"
#: Sub-folder of a saved model that holds its tagger.
FINDER_FOLDER = "term-finder"
#: Taggers kept in memory: an encoder each (MiniLM: ~90 MB), so only the latest few.
CACHE_SIZE = 3
_TAGGERS: OrderedDict[str, TermTagger] = OrderedDict()


class TermLexicon:
    """Known aspect terms and a compiled matcher for them."""

    def __init__(self, terms: Iterable[str]) -> None:
        self.terms = sorted({t.lower() for t in terms if t.strip()}, key=lambda t: (-len(t), t))
        alternatives = "|".join(re.escape(t) for t in self.terms)
        self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if self.terms else None

    @classmethod
    def learn(cls, reviews: Iterable[Review]) -> TermLexicon:
        counts = Counter(a.name.lower() for r in reviews for a in r.aspects if a.kind == "term")
        return cls(term for term, count in counts.items() if count >= _MIN_COUNT)

    def extract(self, text: str) -> list[AspectLabel]:
        """Terms found in ``text``, with their spans, in reading order."""
        if self._pattern is None:
            return []
        return [AspectLabel(m.group(0), "term", None, m.start(), m.end()) for m in self._pattern.finditer(text)]


# ----- the trained finder ---------------------------------------------------------------------


def check_term_finder(owner: object, *, on_disk: bool) -> None:
    """Raise :class:`InvalidParameterError`, in scikit-learn's wording, when
    ``owner.term_finder`` is not ``"auto"``, ``"trained"``, ``"dictionary"`` or a folder (``on_disk``:
    one that exists; a saved model's own parameter may name a folder of another machine).
    """
    value = owner.term_finder  # type: ignore[attr-defined]
    expected = (
        f"The 'term_finder' parameter of {type(owner).__name__} must be 'auto', 'trained', 'dictionary' "
        "or the folder of a saved extract model."
    )
    if value in (AUTO, TRAINED, DICTIONARY):
        return
    if not (isinstance(value, str | Path) and str(value).strip()):
        raise InvalidParameterError(f"{expected} Got {value!r} instead.")
    if on_disk and not Path(value).is_dir():
        raise InvalidParameterError(f"{expected} Got {str(value)!r}: no such folder.")


def fit_term_finder(term_finder: str | Path, reviews: ReviewSet, seed: int) -> TermTagger | None:
    """The tagger a method finds terms with (None: the dictionary), trained on ``reviews``
    or loaded from a saved ``extract`` model folder.

    Raises
    ------
    InputDataError
        A training term without a span, or overlapping terms, naming the review.
    InvalidParameterError
        ``term_finder`` is a folder that does not hold a saved ``extract`` model.
    """
    if term_finder == AUTO:
        term_finder = TRAINED if _can_train(reviews) else DICTIONARY
    if term_finder == DICTIONARY:
        return None
    if term_finder != TRAINED:
        return _saved_tagger(Path(term_finder))
    from topicsent.methods._extract import ExtractMethod

    if unplaced := next((r for r in reviews for a in r.aspects if a.start is None), None):
        raise InputDataError(
            f"{reviews.name}: review {unplaced.id!r}: a term without a span (from/to); the trained term finder "
            "learns from where terms are: give offsets, or use term_finder='dictionary'"
        )
    return trained_tagger(ExtractMethod(random_state=seed).new_tagger(), reviews)


def _can_train(reviews: ReviewSet) -> bool:
    """Whether ``"auto"`` trains a tagger: torch (the ``encoders`` extra) is installed and
    every training term has a span to learn from."""
    import importlib.util

    has_spans = all(a.start is not None for r in reviews for a in r.aspects)
    return has_spans and importlib.util.find_spec("torch") is not None


def trained_tagger(tagger: TermTagger, reviews: ReviewSet) -> TermTagger:
    """``tagger`` fitted on ``reviews``, or the one already fitted on the same reviews
    (texts and labels) with the same parameters in this process."""
    polarities = [p for p in reviews.label_space.polarities if any(a.polarity == p for r in reviews for a in r.aspects)]
    key = _fingerprint(tagger, reviews, polarities)
    if key in _TAGGERS:
        _TAGGERS.move_to_end(key)
        return _TAGGERS[key]
    fitted = tagger.fit(list(reviews), polarities, reviews.name)
    _TAGGERS[key] = fitted
    while len(_TAGGERS) > CACHE_SIZE:
        _TAGGERS.popitem(last=False)
    return fitted


def clear_tagger_cache() -> None:
    """Forget the taggers trained in this process (the next fit trains again)."""
    _TAGGERS.clear()


def _fingerprint(tagger: TermTagger, reviews: Sequence[Review], polarities: list[str]) -> str:
    """A hash of the tagger's parameters and of every text and label it learns from (not
    the set's name: the same reviews under two names are the same training)."""
    digest = hashlib.sha256(json.dumps([tagger.params(), polarities], sort_keys=True, default=str).encode())
    for review in reviews:
        labels = [(a.start, a.end, a.polarity, [(o.start, o.end, o.polarity) for o in a.opinions]) for a in review.aspects]
        digest.update(json.dumps([review.text, labels]).encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def _saved_tagger(folder: Path) -> TermTagger:
    from topicsent.methods._base import BaseMethod
    from topicsent.methods._extract import ExtractMethod

    try:
        saved = BaseMethod.load(folder)
    except ModelFileError as error:
        raise InvalidParameterError(f"term_finder {str(folder)!r} is not a readable saved model: {error}") from None
    if not isinstance(saved, ExtractMethod):
        raise InvalidParameterError(
            f"term_finder {str(folder)!r} is a saved {saved.name!r} model; it must be an 'extract' model "
            "(topicsent train -m extract ...)"
        )
    return saved.tagger_


def find_terms(texts: Sequence[str], lexicon: TermLexicon, tagger: TermTagger | None) -> list[list[AspectLabel]]:
    """The terms of each text, with their spans, in reading order: the tagger's when there
    is one (with the opinion terms it links to each, when it learned opinions), else the
    lexicon's."""
    if tagger is None:
        return [lexicon.extract(text) for text in texts]
    return [
        [
            AspectLabel(text[start:end], "term", None, start, end, tuple(OpinionLabel(*span) for span, _ in links))
            for (start, end), links in zip(found.terms, found.links, strict=True)
        ]
        for text, found in zip(texts, tagger.find(texts), strict=True)
    ]


def nothing_found_reason(lexicon: TermLexicon, tagger: TermTagger | None) -> str:
    """Why a review came back without terms, for its row."""
    if tagger is None:
        return (
            f"no aspect term found: the term finder knows the {len(lexicon.terms):,} terms "
            "marked in training, matched as whole words"
        )
    return "no aspect term found by the trained term tagger"


def save_tagger(tagger: TermTagger | None, directory: Path) -> None:
    if tagger is not None:
        tagger.save(directory / FINDER_FOLDER)


def load_tagger(directory: Path, saved: bool) -> TermTagger | None:
    """The tagger :func:`save_tagger` wrote (``saved``: the model says it has one).

    Raises
    ------
    ModelFileError
        The model says it has a tagger and the folder holds none, or a damaged one.
    """
    if not saved:
        return None
    from topicsent.methods._tagger import TermTagger

    folder = directory / FINDER_FOLDER
    if not folder.is_dir():
        raise ModelFileError(f"{folder}: damaged model (its term tagger is missing)")
    return TermTagger.restored(folder)
