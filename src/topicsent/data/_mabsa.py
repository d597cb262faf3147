"""M-ABSA: Korean (and parallel English) aspect-based sentiment in four domains.

Each line of a file is ``TEXT####[['term', 'category', 'polarity'], ...]``: a Python
literal list of triplets, where ``term`` is ``NULL`` for an implicit aspect. Three views
are made of one file:

- ``acsa``: one aspect per *entity* of a category (``food quality`` -> ``food``,
  ``Screen#Clarity`` -> ``Screen``): a coarse, fixed taxonomy;
- ``acsa-full``: one aspect per full category (``food quality``, ``Screen#Clarity``);
- ``atsa``: one aspect per term found verbatim in the text, with its span.

Several triplets of one aspect in a sentence with different polarities become
``conflict``, as in SemEval-2014. Sentences without an aspect of the view are left out
(the protocol of the other ABSA loaders). The files have a few lines whose label part
Python cannot read (a quote inside a term: ``'Ray 's'``) and, being translations, terms
that are not in the text: both are skipped, counted and reported as one note per file on
the review set (:attr:`ReviewSet.notes`), never an error.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from topicsent.data._reviews import AspectLabel, LabelSpace, Review, ReviewSet, Splits
from topicsent.schema import Task

#: The domains of each language; the English restaurant file is not in the shared copy.
MABSA_DOMAINS: dict[str, tuple[str, ...]] = {"ko": ("restaurant", "hotel", "food", "phone"), "en": ("food", "hotel", "phone")}
#: Dataset view -> (task, what an aspect is).
MABSA_VIEWS: dict[str, tuple[Task, str]] = {
    "acsa": (Task.ACSA, "entity"), "acsa-full": (Task.ACSA, "category"), "atsa": (Task.ATSA, "term"),
}  # fmt: skip
#: Split name -> file name.
MABSA_FILES = {"train": "train.txt", "val": "dev.txt", "test": "test.txt"}
MABSA_POLARITIES = ("positive", "negative", "neutral", "conflict")
IMPLICIT_TERM = "NULL"
LABEL_SEPARATOR = "####"


@dataclass(frozen=True)
class Triplet:
    """One opinion of a sentence: ``term`` is None for an implicit aspect."""

    term: str | None
    category: str
    polarity: str

    @property
    def entity(self) -> str:
        """The entity part of the category: ``Screen`` of ``Screen#Clarity``, ``food`` of
        ``food quality`` (entities are one word there: ``room_amenities``)."""
        return self.category.partition("#")[0] if "#" in self.category else self.category.partition(" ")[0]


@dataclass(frozen=True)
class Sentence:
    line: int
    text: str
    triplets: tuple[Triplet, ...]


@dataclass(frozen=True)
class MabsaFile:
    """The readable sentences of one file and the line numbers (1-based) of the rest."""

    name: str
    sentences: tuple[Sentence, ...]
    unparseable: tuple[int, ...]


def _triplets(label: str) -> tuple[Triplet, ...] | None:
    """The triplets of a label part, or None when it is not a list of string triplets
    with a known polarity."""
    try:
        value = ast.literal_eval(label.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, list | tuple):
        return None
    triplets = []
    for item in value:
        if not (isinstance(item, list | tuple) and len(item) == 3 and all(isinstance(part, str) for part in item)):
            return None
        term, category, polarity = (part.strip() for part in item)
        if polarity not in MABSA_POLARITIES or not category:
            return None
        triplets.append(Triplet(None if term == IMPLICIT_TERM else term, category, polarity))
    return tuple(triplets)


@cache
def read_mabsa_file(path: Path, name: str) -> MabsaFile:
    """Parse one M-ABSA file (UTF-8; ``name`` is how notes refer to it).

    Lines without ``####`` or with a label part that is not a list of
    ``[term, category, polarity]`` string triplets are counted as unparseable, not
    raised; blank lines are ignored.
    """
    sentences, unparseable = [], []
    with path.open(encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            text, separator, label = line.rstrip("\r\n").rpartition(LABEL_SEPARATOR)
            triplets = _triplets(label) if separator and text.strip() else None
            if triplets is None:
                unparseable.append(number)
            else:
                sentences.append(Sentence(number, text.strip(), triplets))
    return MabsaFile(name, tuple(sentences), tuple(unparseable))


def _merged(polarities: Sequence[str]) -> str:
    """One polarity for several opinions of one aspect: theirs if they agree, else ``conflict``."""
    return polarities[0] if len(set(polarities)) == 1 else "conflict"


def _grouped(keys_and_polarities: list[tuple[str, str]]) -> dict[str, str]:
    groups: dict[str, list[str]] = {}
    for key, polarity in keys_and_polarities:
        groups.setdefault(key, []).append(polarity)
    return {key: _merged(polarities) for key, polarities in groups.items()}


def category_aspects(sentence: Sentence, level: str) -> tuple[AspectLabel, ...]:
    """The sentence's categories (``level="category"``) or entities (``"entity"``), one
    aspect each in order of first mention."""
    name: Callable[[Triplet], str] = (lambda t: t.entity) if level == "entity" else (lambda t: t.category)
    merged = _grouped([(name(t), t.polarity) for t in sentence.triplets])
    return tuple(AspectLabel(aspect, "category", polarity) for aspect, polarity in merged.items())


def term_aspects(sentence: Sentence) -> tuple[tuple[AspectLabel, ...], int]:
    """The sentence's explicit terms found verbatim in its text (span of the first
    occurrence; one aspect per term), and how many explicit triplets were not found
    (an empty term, which one Korean line has, counts as not found)."""
    found = [(t.term, t.polarity) for t in sentence.triplets if t.term and t.term in sentence.text]
    missing = sum(1 for t in sentence.triplets if t.term is not None) - len(found)
    aspects = []
    for term, polarity in _grouped(found).items():
        start = sentence.text.index(term)
        aspects.append(AspectLabel(term, "term", polarity, start, start + len(term)))
    return tuple(aspects), missing


def _file_note(parsed: MabsaFile, missing_terms: int | None, explicit_terms: int) -> str | None:
    """One line on what this file lost: unparseable lines and, for terms, those not in the text."""
    parts = []
    if parsed.unparseable:
        lines = ", ".join(map(str, parsed.unparseable))
        parts.append(f"{len(parsed.unparseable)} unparseable line{'s' * (len(parsed.unparseable) > 1)} skipped ({lines})")
    if missing_terms:
        parts.append(f"{missing_terms} of {explicit_terms} terms not found in the text, left out")
    return f"{parsed.name}: {'; '.join(parts)}" if parts else None


def _review_set(parsed: MabsaFile, split: str, view: str, language: str, name: str, space: LabelSpace) -> ReviewSet:
    task, level = MABSA_VIEWS[view]
    reviews, missing = [], 0
    for sentence in parsed.sentences:
        if level == "term":
            aspects, lost = term_aspects(sentence)
            missing += lost
        else:
            aspects = category_aspects(sentence, level)
        if aspects:
            reviews.append(Review(f"{split}-{sentence.line}", sentence.text, language, aspects=aspects))
    explicit = sum(1 for s in parsed.sentences for t in s.triplets if t.term is not None)
    note = _file_note(parsed, missing if level == "term" else None, explicit)
    return ReviewSet(
        tuple(reviews), label_space=space, task=task, name=f"{name}/{split}", language=language, notes=(note,) if note else ()
    )


def mabsa_splits(files: dict[str, MabsaFile], *, view: str, language: str, name: str) -> Splits:
    """The official train/dev/test splits of one language and domain in one view.

    Parameters
    ----------
    files : dict of str to MabsaFile
        ``train``, ``val`` and ``test`` parsed by :func:`read_mabsa_file`.
    view : {"acsa", "acsa-full", "atsa"}
        Entity-level categories, full categories, or terms (see the module docstring).
    language : str
        ``ko`` or ``en``.
    name : str
        The dataset name, prefix of each split's name.

    Returns
    -------
    Splits
        The taxonomy (ACSA) is every category of the view seen in any of the three
        files, sorted, so a test category missing from training stays legal (and is
        simply never predicted); polarities are those of SemEval-2014 with ``conflict``.
    """
    task, level = MABSA_VIEWS[view]
    categories = None
    if task is Task.ACSA:
        seen = {a.name for parsed in files.values() for s in parsed.sentences for a in category_aspects(s, level)}
        categories = tuple(sorted(seen))
    space = LabelSpace(polarities=MABSA_POLARITIES, categories=categories)
    sets = {split: _review_set(files[split], split, view, language, name, space) for split in MABSA_FILES}
    return Splits(sets["train"], sets["val"], sets["test"])
