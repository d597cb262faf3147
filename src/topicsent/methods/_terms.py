"""Aspect-term extraction by a lexicon learned from training terms.

The simplest extractor that is still honest: it finds, in a new review, the terms
annotators marked in training reviews (case-insensitive, whole words, longest first,
no overlaps). Methods that cannot extract terms themselves use it for ATSA.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from topicsent.data import AspectLabel, Review

_MIN_COUNT = 2  # a term marked once may be an annotator's one-off


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
