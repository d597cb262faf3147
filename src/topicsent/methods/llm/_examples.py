"""Labelled reviews shown to the model: a fixed stratified set, or the nearest ones.

``few-shot`` shows the same k examples to every review, chosen once (seeded) to
cover the labels. ``retrieval`` shows each review the k most similar labelled
reviews: their sentence embeddings sit in a FAISS inner-product index (vectors
normalised, so scores are cosines) built in ``fit`` and saved beside the model.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from topicsent.data import AspectLabel, Review
from topicsent.schema import Task

SHORT_EXAMPLE_CHARS = 300  # fixed examples come from shorter reviews: every prompt carries them


def _label_key(review: Review, task: Task) -> tuple:
    if task is Task.RATING:
        return (review.rating,)
    return tuple(sorted({a.polarity for a in review.aspects}))


def stratified_examples(reviews: Sequence[Review], task: Task, k: int, seed: int) -> list[Review]:
    """``k`` labelled reviews, round-robin over label groups (ratings, or the set of
    polarities a review carries), preferring short ones; seeded."""
    candidates = [r for r in reviews if (r.aspects or task is Task.RATING) and len(r.text) <= SHORT_EXAMPLE_CHARS]
    candidates = candidates or [r for r in reviews if r.aspects or task is Task.RATING]
    random.Random(seed).shuffle(candidates)
    groups: dict[tuple, list[Review]] = defaultdict(list)
    for review in candidates:
        groups[_label_key(review, task)].append(review)
    chosen: list[Review] = []
    queues = [groups[key] for key in sorted(groups, key=str)]
    while len(chosen) < k and any(queues):
        for queue in queues:
            if queue and len(chosen) < k:
                chosen.append(queue.pop(0))
    return chosen


def review_to_dict(review: Review) -> dict:
    return {
        "id": review.id, "text": review.text, "language": review.language, "rating": review.rating,
        "aspects": [[a.name, a.kind, a.polarity, a.start, a.end] for a in review.aspects],
    }  # fmt: skip


def review_from_dict(data: dict) -> Review:
    aspects = tuple(AspectLabel(*item) for item in data["aspects"])
    return Review(data["id"], data["text"], data["language"], data["rating"], aspects)


def save_reviews(reviews: Sequence[Review], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for review in reviews:
            out.write(json.dumps(review_to_dict(review), ensure_ascii=False) + "\n")


def load_reviews(path: Path) -> list[Review]:
    with path.open(encoding="utf-8") as lines:
        return [review_from_dict(json.loads(line)) for line in lines if line.strip()]


class ExampleIndex:
    """Labelled reviews in a FAISS index of their sentence embeddings."""

    INDEX_FILE = "examples.faiss"

    def __init__(self, encoder_name: str) -> None:
        from topicsent.encoders import make_encoder

        self.encoder = make_encoder(encoder_name)
        self.index = None

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.ascontiguousarray(self.encoder.sentences(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def build(self, reviews: Sequence[Review]) -> ExampleIndex:
        import faiss

        vectors = self._vectors([r.text for r in reviews])
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)
        return self

    def nearest(self, texts: Sequence[str], k: int) -> list[list[int]]:
        """Positions of the ``k`` most similar examples per text, most similar first."""
        _, positions = self.index.search(self._vectors(texts), min(k, self.index.ntotal))
        return [[int(p) for p in row if p >= 0] for row in positions]

    def save(self, directory: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(directory / self.INDEX_FILE))

    def load(self, directory: Path) -> ExampleIndex:
        import faiss

        try:
            self.index = faiss.read_index(str(directory / self.INDEX_FILE))
        except RuntimeError as error:  # faiss reports a damaged file as RuntimeError
            raise ValueError(f"{self.INDEX_FILE}: {error}") from None
        return self
