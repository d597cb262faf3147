"""Content words and sentence segments for English and Korean.

Topic models count words, so they need the words that carry topics and nothing
else: English lemmas (simplemma) without stopwords, and for Korean, whose words are
stems plus particles, the nouns, roots and adjectives found by Kiwi's morphological
analysis (kiwipiepy) without functional nouns. Both libraries ship their data in
their wheels, so this works offline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache

from topicsent.errors import InvalidParameterError

_ENGLISH_WORD = re.compile(r"[a-z][a-z'-]*[a-z]")
_ENGLISH_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
MIN_ENGLISH_LENGTH = 3
#: Words frequent in any review and about no topic, beyond scikit-learn's stopword list.
_ENGLISH_REVIEW_STOPWORDS = frozenset({
    "also", "just", "really", "would", "could", "get", "got", "one", "even", "still", "much", "lot", "little",
    "bit", "thing", "things", "way", "make", "made", "say", "said", "go", "went", "come", "came", "know", "think",
    "though", "although", "however", "well", "back", "quite", "actually",
})  # fmt: skip
#: Kiwi tags kept: common and proper nouns, roots (XR: 깔끔, 친절), adjectives (VA), foreign words.
_KOREAN_TAGS = frozenset({"NNG", "NNP", "XR", "VA", "SL"})
#: Functional nouns and all-purpose adjectives that name no topic.
KOREAN_STOPWORDS = frozenset({
    "것", "수", "등", "때", "거", "게", "이", "그", "저", "좀", "더", "때문", "정도", "점", "나", "내", "뭐", "왜", "안",
    "못", "중", "번", "분", "년", "전", "후", "말", "듯", "걸", "줄", "데", "바",
    "있다", "없다", "같다", "이렇다", "그렇다", "어떻다", "아니다",
})  # fmt: skip


@cache
def _english_stopwords() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | _ENGLISH_REVIEW_STOPWORDS


@lru_cache(maxsize=200_000)
def _english_lemma(word: str) -> str:
    from topicsent._extras import require

    simplemma = require("simplemma", needed_by="English lemmas (topics, lda)")
    return simplemma.lemmatize(word, lang="en").lower()


def _english_words(text: str) -> list[str]:
    stopwords = _english_stopwords()
    lemmas = (_english_lemma(word) for word in _ENGLISH_WORD.findall(text.lower()) if word not in stopwords)
    return [lemma for lemma in lemmas if len(lemma) >= MIN_ENGLISH_LENGTH and lemma not in stopwords]


@cache
def _kiwi():
    from topicsent._extras import require

    return require("kiwipiepy", needed_by="Korean morphemes (topics, lda, tfidf-lr analyzer=morph)").Kiwi()


def _korean_form(token) -> str:
    """Adjective stems get their dictionary ending (좋 -> 좋다) so keywords read as words."""
    return token.form + "다" if token.tag == "VA" else token.form.lower()


def _korean_words(tokens) -> list[str]:
    """Kept tags, without stopwords and without one-letter foreign tokens ("c", "k")."""
    kept = (t for t in tokens if t.tag in _KOREAN_TAGS and not (t.tag == "SL" and len(t.form) < 2))
    return [form for form in map(_korean_form, kept) if form not in KOREAN_STOPWORDS]


@lru_cache(maxsize=200_000)
def korean_morphemes(text: str) -> tuple[str, ...]:
    """Every morpheme of a Korean text as ``form/tag`` (``맛있/VA``, ``지만/EC``, ``않/VX``):
    endings and auxiliaries are kept, unlike :func:`content_words`, because they carry
    sentiment and negation. Cached per text: a classifier's tuning reads the same texts
    several times."""
    return tuple(f"{token.form}/{token.tag}" for token in _kiwi().tokenize(text))


def content_words(texts: Sequence[str], language: str) -> list[list[str]]:
    """The topic-bearing words of each text, in order (``language``: ``en`` or ``ko``)."""
    if language == "ko":
        return [_korean_words(tokens) for tokens in _kiwi().tokenize(list(texts))]
    if language == "en":
        return [_english_words(text) for text in texts]
    raise InvalidParameterError(f"no word analysis for language {language!r}; supported: en, ko")


def split_sentences(text: str, language: str) -> list[tuple[int, int]]:
    """Character spans (start, end) of the sentences of ``text``, whitespace trimmed."""
    if language == "ko":
        spans: Iterable[tuple[int, int]] = ((s.start, s.end) for s in _kiwi().split_into_sents(text))
    else:
        spans = _regex_sentences(text)
    return [(start, end) for start, end in (_trimmed(text, s, e) for s, e in spans) if end > start]


def _regex_sentences(text: str) -> Iterable[tuple[int, int]]:
    start = 0
    for boundary in _ENGLISH_SENTENCE_END.finditer(text):
        yield start, boundary.start()
        start = boundary.end()
    yield start, len(text)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
