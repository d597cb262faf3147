"""Topic discovery for users without a taxonomy: embeddings -> UMAP -> HDBSCAN -> keywords.

BERTopic runs the pipeline (it works offline here when given precomputed embeddings):
our packaged encoders embed each review or sentence, UMAP reduces the vectors, HDBSCAN
finds dense groups and leaves the rest as outliers (reported, never forced into a
topic), and class-based TF-IDF over our language-aware content words names each
topic by its keywords. Korean text is analysed by Kiwi before counting, so keywords
are morphemes ("배우", "연기"), not space-separated chunks with particles attached.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from topicsent.data import Review
from topicsent.errors import InputDataError
from topicsent.text import content_words, split_sentences
from topicsent.topics._taxonomy import OUTLIER, Taxonomy, Topic

#: The sentence encoder per language (all packaged; Korean needs a multilingual one).
MIN_SEGMENTS = 20
HDBSCAN_MIN_SAMPLES = 5
MIN_KEYWORD_DOCUMENTS = 3
UNITS = ("review", "sentence")


@dataclass(frozen=True)
class Segment:
    """The unit that gets a topic: a whole review, or one sentence of it (``start:end``)."""

    review_id: str
    start: int
    end: int
    text: str


@dataclass
class Discovery:
    """What discovery found: the taxonomy, and the topic of every segment (``-1``: outlier)."""

    taxonomy: Taxonomy
    segments: list[Segment]
    topics: np.ndarray
    words: list[list[str]]
    embeddings: np.ndarray
    seconds: float

    def assignments(self):  # -> pandas.DataFrame
        """One row per segment: review id, span, text, topic id and name."""
        import pandas as pd

        names = self.taxonomy.names_by_id()
        return pd.DataFrame({
            "review_id": [s.review_id for s in self.segments],
            "start": [s.start for s in self.segments],
            "end": [s.end for s in self.segments],
            "text": [s.text for s in self.segments],
            "topic": self.topics,
            "topic_name": [names.get(int(t)) for t in self.topics],
        })  # fmt: skip


def segments_of(reviews: Sequence[Review], unit: str, language: str) -> list[Segment]:
    """Whole reviews, or their sentences (a long review can touch several topics)."""
    if unit == "review":
        return [Segment(r.id, 0, len(r.text), r.text) for r in reviews if r.text.strip()]
    return [
        Segment(r.id, start, end, r.text[start:end])
        for r in reviews
        if r.text.strip()
        for start, end in split_sentences(r.text, language)
    ]


def discover_topics(
    reviews: Sequence[Review],
    *,
    language: str,
    unit: str = "review",
    encoder: str | None = None,
    min_topic_size: int | None = None,
    n_topics: int | None = None,
    outlier_threshold: float | None = None,
    n_keywords: int = 10,
    n_examples: int = 3,
    seed: int = 0,
) -> Discovery:
    """Find topics in ``reviews``.

    ``min_topic_size`` is the smallest group HDBSCAN calls a topic (default: 0.5% of
    the segments, at least 10); ``n_topics`` merges similar topics down to that many.
    ``outlier_threshold``: outliers whose cosine similarity to the closest topic
    centroid reaches it join that topic (None: outliers stay outliers).
    """
    began = time.perf_counter()
    segments = segments_of(reviews, unit, language)
    if len(segments) < MIN_SEGMENTS:
        raise InputDataError(f"topic discovery needs at least {MIN_SEGMENTS} non-empty {unit}s; got {len(segments)}")
    words = _frequent_words_only(content_words([s.text for s in segments], language))
    from topicsent.encoders import default_encoder, make_encoder

    embeddings = make_encoder(encoder or default_encoder(language)).sentences([s.text for s in segments])
    model = _bertopic(len(segments), min_topic_size=min_topic_size, n_topics=n_topics, seed=seed)
    topics = np.asarray(model.fit_transform([" ".join(ws) for ws in words], embeddings=embeddings)[0])
    if outlier_threshold is not None:
        topics = reassign_outliers(topics, embeddings, outlier_threshold)
    taxonomy = _taxonomy(model, segments, topics, embeddings, language, unit, n_keywords=n_keywords, n_examples=n_examples)
    return Discovery(taxonomy, segments, topics, words, embeddings, time.perf_counter() - began)


def _frequent_words_only(words: list[list[str]]) -> list[list[str]]:
    """Drop words found in fewer than 0.1% of the units (at least 3): keywords weigh
    rarity up, so typos and one-off names would otherwise outrank real topic words."""
    from collections import Counter

    document_counts = Counter(word for units in words for word in set(units))
    floor = max(MIN_KEYWORD_DOCUMENTS, len(words) // 1000)
    return [[w for w in units if document_counts[w] >= floor] for units in words]


def _unit_vectors(embeddings: np.ndarray) -> np.ndarray:
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)


def reassign_outliers(topics: np.ndarray, embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Outliers join the topic whose centroid they are most similar to (cosine), when
    that similarity is at least ``threshold``; the others stay outliers."""
    vectors = _unit_vectors(embeddings)
    ids = np.array(sorted({int(t) for t in topics} - {OUTLIER}))
    outliers = np.flatnonzero(topics == OUTLIER)
    if not len(ids) or not len(outliers):
        return topics
    centroids = _unit_vectors(np.stack([vectors[topics == t].mean(axis=0) for t in ids]))
    similarity = vectors[outliers] @ centroids.T
    best = similarity.argmax(axis=1)
    close = similarity[np.arange(len(outliers)), best] >= threshold
    reassigned = topics.copy()
    reassigned[outliers[close]] = ids[best[close]]
    return reassigned


def _bertopic(n_segments: int, *, min_topic_size: int | None, n_topics: int | None, seed: int):
    from bertopic import BERTopic
    from bertopic.vectorizers import ClassTfidfTransformer
    from hdbscan import HDBSCAN
    from sklearn.feature_extraction.text import CountVectorizer
    from umap import UMAP

    size = min_topic_size or max(10, n_segments // 200)
    return BERTopic(
        umap_model=UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed),
        # min_samples well below the cluster size: with HDBSCAN's default (equal to it) the
        # excess-of-mass selection kept 2 giant clusters of 20k Korean reviews; with 5, 21
        hdbscan_model=HDBSCAN(
            min_cluster_size=size, min_samples=HDBSCAN_MIN_SAMPLES, cluster_selection_method="eom", prediction_data=True
        ),
        # documents arrive as (frequent) content words joined by spaces: count them as they
        # are; no min_df, which BERTopic applies to topics and so drops topic-unique words
        vectorizer_model=CountVectorizer(token_pattern=r"\S+", lowercase=False),
        # square-root term frequencies: words common to every topic ("love", "wear") stop
        # crowding out the words that tell topics apart (SemEval-14 keyword diversity 0.74 -> 0.93)
        ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True),
        nr_topics=n_topics,
        calculate_probabilities=False,
        # not "english": BERTopic then deletes every non-ASCII letter before counting
        # words, which left Korean topics with Latin fragments ("ost", "cg") as keywords
        language="multilingual",
    )


def _taxonomy(model, segments, topics, embeddings, language, unit, *, n_keywords: int, n_examples: int) -> Taxonomy:
    unit_vectors = _unit_vectors(embeddings)
    found: list[Topic] = []
    for topic_id in sorted({int(t) for t in topics} - {OUTLIER}):
        members = np.flatnonzero(topics == topic_id)
        # BERTopic pads topics with few distinct words with empty strings
        keywords = [word for word, _ in model.get_topic(topic_id) or [] if word][:n_keywords]
        centroid = unit_vectors[members].mean(axis=0)
        closest = members[np.argsort(-(unit_vectors[members] @ centroid))[:n_examples]]
        name = topic_name(keywords, topic_id, {t.name for t in found})
        found.append(
            Topic(id=topic_id, name=name, keywords=keywords, size=len(members), examples=[segments[i].text for i in closest])
        )
    return Taxonomy(
        language=language, unit=unit, n_segments=len(segments), n_outliers=int((topics == OUTLIER).sum()), topics=found
    )


def topic_name(keywords: list[str], topic_id: int, taken: set[str]) -> str:
    """The top three keywords joined by ``_``, made unique with the topic id when two
    topics share them (or named by the id when there are no keywords)."""
    name = "_".join(keywords[:3]) or f"topic_{topic_id}"
    return name if name not in taken else f"{name}_{topic_id}"
