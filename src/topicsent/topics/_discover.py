"""Topic discovery for users without a taxonomy: embeddings -> UMAP -> HDBSCAN -> keywords.

BERTopic runs the pipeline (it works offline here when given precomputed embeddings):
our packaged encoders embed each review or sentence, UMAP reduces the vectors, HDBSCAN
finds dense groups and leaves the rest as outliers, and class-based TF-IDF over our
language-aware content words names each topic by its keywords.

HDBSCAN leaves many units out (about 30-50% of reviews here), mostly ones between
dense groups rather than off-topic ones: in the original embedding space they are as
close to a topic's centre as its own members. So by default an outlier joins its
nearest topic when it is at least as similar to that topic's centre as 95% of the
clustered units are to theirs; the rest stay outliers, and the taxonomy records how
many joined, the threshold and why (:class:`OutlierAssignment`). Keywords and names
come from the clustered units only, so joined units do not blur them. Korean text is analysed by Kiwi before counting, so keywords
are morphemes ("배우", "연기"), not space-separated chunks with particles attached.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from topicsent.data import Review
from topicsent.errors import InputDataError, InvalidParameterError
from topicsent.text import content_words, split_sentences
from topicsent.topics._taxonomy import OUTLIER, OutlierAssignment, Taxonomy, Topic

#: The sentence encoder per language (all packaged; Korean needs a multilingual one).
MIN_SEGMENTS = 20
HDBSCAN_MIN_SAMPLES = 5
MIN_KEYWORD_DOCUMENTS = 3
UNITS = ("review", "sentence")
AUTO = "auto"
#: The automatic threshold: the similarity to their own topic's centre that this share of
#: clustered units reach (0.95: 3-6% of units stay outliers on NSMC, Women's clothing and
#: MAMS, and gold alignment rises; see docs/benchmarks/topics/)
AUTO_MEMBER_SHARE = 0.95


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
    clustered: np.ndarray | None = None  # the topics as clustering left them, before outliers joined

    def assignments(self):  # -> pandas.DataFrame
        """One row per segment: review id, span, text, topic id and name, and whether it
        joined its topic as an outlier of clustering (``joined``)."""
        import pandas as pd

        names = self.taxonomy.names_by_id()
        clustered = self.topics if self.clustered is None else self.clustered
        return pd.DataFrame({
            "review_id": [s.review_id for s in self.segments],
            "start": [s.start for s in self.segments],
            "end": [s.end for s in self.segments],
            "text": [s.text for s in self.segments],
            "topic": self.topics,
            "topic_name": [names.get(int(t)) for t in self.topics],
            "joined": (clustered == OUTLIER) & (self.topics != OUTLIER),
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
    outlier_threshold: float | str | None = AUTO,
    outlier_share: float | None = None,
    n_keywords: int = 10,
    n_examples: int = 3,
    seed: int = 0,
) -> Discovery:
    """Find topics in ``reviews``.

    ``min_topic_size`` is the smallest group HDBSCAN calls a topic (default: 0.5% of
    the segments, at least 10); ``n_topics`` merges similar topics down to that many.
    Outliers of clustering then join their nearest topic as :func:`assign_outliers`
    decides from ``outlier_threshold`` (``"auto"``, a cosine similarity, or None to
    keep them all) and ``outlier_share``.

    Raises
    ------
    InputDataError
        Fewer than 20 non-empty units.
    InvalidParameterError
        A bad outlier threshold or share, or both given.
    """
    check_outlier_options(outlier_threshold, outlier_share)
    began = time.perf_counter()
    segments = segments_of(reviews, unit, language)
    if len(segments) < MIN_SEGMENTS:
        raise InputDataError(f"topic discovery needs at least {MIN_SEGMENTS} non-empty {unit}s; got {len(segments)}")
    words = _frequent_words_only(content_words([s.text for s in segments], language))
    from topicsent.encoders import default_encoder, make_encoder

    embeddings = make_encoder(encoder or default_encoder(language)).sentences([s.text for s in segments])
    model = _bertopic(len(segments), min_topic_size=min_topic_size, n_topics=n_topics, seed=seed)
    clustered = np.asarray(model.fit_transform([" ".join(ws) for ws in words], embeddings=embeddings)[0])
    topics, outliers = assign_outliers(clustered, embeddings, threshold=outlier_threshold, share=outlier_share)
    taxonomy = _taxonomy(model, segments, topics, embeddings, language, unit, n_keywords=n_keywords, n_examples=n_examples)
    taxonomy = taxonomy.model_copy(update={"outliers": outliers})
    return Discovery(taxonomy, segments, topics, words, embeddings, time.perf_counter() - began, clustered=clustered)


def _frequent_words_only(words: list[list[str]]) -> list[list[str]]:
    """Drop words found in fewer than 0.1% of the units (at least 3): keywords weigh
    rarity up, so typos and one-off names would otherwise outrank real topic words."""
    from collections import Counter

    document_counts = Counter(word for units in words for word in set(units))
    floor = max(MIN_KEYWORD_DOCUMENTS, len(words) // 1000)
    return [[w for w in units if document_counts[w] >= floor] for units in words]


def _unit_vectors(embeddings: np.ndarray) -> np.ndarray:
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)


def _similarities(topics: np.ndarray, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every unit's cosine similarity to every topic's centre (the mean of its members'
    unit vectors), and the topic ids of the columns."""
    vectors = _unit_vectors(embeddings)
    ids = np.array(sorted({int(t) for t in topics} - {OUTLIER}))
    centroids = _unit_vectors(np.stack([vectors[topics == t].mean(axis=0) for t in ids]))
    return vectors @ centroids.T, ids


def reassign_outliers(topics: np.ndarray, embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Outliers join the topic whose centroid they are most similar to (cosine), when
    that similarity is at least ``threshold``; the others stay outliers."""
    outliers = np.flatnonzero(topics == OUTLIER)
    if not len(outliers) or not (topics != OUTLIER).any():
        return topics
    similarity, ids = _similarities(topics, embeddings)
    best = similarity[outliers].argmax(axis=1)
    close = similarity[outliers, best] >= threshold
    reassigned = topics.copy()
    reassigned[outliers[close]] = ids[best[close]]
    return reassigned


def check_outlier_options(threshold: float | str | None, share: float | None) -> None:
    """Raise :class:`InvalidParameterError` for an outlier threshold or share :func:`assign_outliers` refuses."""
    if isinstance(threshold, str) and threshold != AUTO:
        raise InvalidParameterError(f"outlier_threshold must be 'auto', a number in [-1, 1] or None; got {threshold!r}")
    if isinstance(threshold, int | float) and not -1.0 <= threshold <= 1.0:
        raise InvalidParameterError(f"outlier_threshold is a cosine similarity, in [-1, 1]; got {threshold}")
    if share is not None:
        if not 0.0 <= share <= 1.0:
            raise InvalidParameterError(f"outlier_share must be in [0, 1]; got {share}")
        if threshold != AUTO:
            raise InvalidParameterError("give an outlier threshold or a target outlier share, not both")


def assign_outliers(
    topics: np.ndarray, embeddings: np.ndarray, *, threshold: float | str | None = AUTO, share: float | None = None
) -> tuple[np.ndarray, OutlierAssignment]:
    """Outliers (topic ``-1``) join their nearest topic when they are similar enough to its centre.

    Parameters
    ----------
    topics : ndarray of shape (n_units,)
        Topic ids from clustering, ``-1`` for outliers.
    embeddings : ndarray of shape (n_units, dim)
    threshold : "auto", float or None, default="auto"
        The cosine similarity to the nearest topic's centre an outlier needs to join it.
        ``"auto"``: the similarity that 95% of clustered units have to their own
        topic's centre (:data:`AUTO_MEMBER_SHARE`); None: every outlier stays one.
    share : float, optional
        A target share of units left in no topic: the threshold is lowered until at
        most this share stays out (the most similar outliers join first). Only with
        ``threshold="auto"``.

    Returns
    -------
    topics : ndarray
        The new topic ids.
    report : OutlierAssignment
        How many were found and joined, the threshold and how it was chosen.

    Raises
    ------
    InvalidParameterError
        A threshold outside [-1, 1], a share outside [0, 1], or both given.
    """
    check_outlier_options(threshold, share)
    found = int((topics == OUTLIER).sum())
    rule = "none" if threshold is None else "share" if share is not None else AUTO if threshold == AUTO else "threshold"
    report = OutlierAssignment(rule=rule, found=found, target_share=share)
    if rule == "none" or not found or not (topics != OUTLIER).any():
        return topics, report
    similarity, ids = _similarities(topics, embeddings)
    if rule == "share":
        best = np.sort(similarity[topics == OUTLIER].max(axis=1))[::-1]
        to_join = found - int(share * len(topics))
        if to_join <= 0:
            return topics, report
        value = float(best[to_join - 1])
    elif rule == AUTO:
        members = np.flatnonzero(topics != OUTLIER)
        own = similarity[members, np.searchsorted(ids, topics[members])]
        value = float(np.quantile(own, 1 - AUTO_MEMBER_SHARE))
        report = report.model_copy(update={"member_share": AUTO_MEMBER_SHARE})
    else:
        value = float(threshold)
    assigned = reassign_outliers(topics, embeddings, value)
    joined = found - int((assigned == OUTLIER).sum())
    return assigned, report.model_copy(update={"threshold": value, "joined": joined})


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
