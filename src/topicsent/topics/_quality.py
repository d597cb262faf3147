"""How good a set of topics is, whatever made them (LDA, embedding clustering, a person).

- Coherence: do a topic's keywords occur together in real reviews? NPMI over
  document co-occurrence (tomotopy's implementation), from -1 to 1, higher is better;
  C_V as the second common measure.
- Diversity: the share of distinct words among all topics' top keywords (1.0: no
  two topics share a keyword).
- Alignment with gold categories (MAMS, SemEval-14): NMI and ARI between each
  review's topic and its gold category, and purity (the share of reviews whose topic's
  most common gold category is their own).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

TOP_N = 10


def coherence(keywords: Sequence[Sequence[str]], documents: Sequence[Sequence[str]], *, measure: str = "c_npmi") -> float:
    """Mean coherence of the topics' top keywords over tokenized reference documents."""
    from tomotopy.coherence import Coherence
    from tomotopy.utils import Corpus

    top = [list(words)[:TOP_N] for words in keywords if words]
    targets = sorted({word for words in top for word in words})
    if not targets:
        return float("nan")
    corpus = Corpus()
    for words in documents:
        if words:
            corpus.add_doc(words=list(words))
    scorer = Coherence(corpus, coherence=measure, window_size=0, top_n=TOP_N, targets=targets)
    return float(np.mean([scorer.get_score(words=words) for words in top]))


def diversity(keywords: Sequence[Sequence[str]]) -> float:
    """Distinct words / all words among the topics' top keywords."""
    top = [word for words in keywords for word in list(words)[:TOP_N]]
    return len(set(top)) / len(top) if top else float("nan")


def alignment(topics: Sequence[int], gold: Sequence[str]) -> dict[str, float]:
    """NMI, ARI and purity of topic assignments against gold labels (same order)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    by_topic: dict[int, Counter] = {}
    for topic, label in zip(topics, gold, strict=True):
        by_topic.setdefault(int(topic), Counter())[label] += 1
    purity = sum(counts.most_common(1)[0][1] for counts in by_topic.values()) / len(gold)
    return {
        "nmi": float(normalized_mutual_info_score(gold, topics)),
        "ari": float(adjusted_rand_score(gold, topics)),
        "purity": float(purity),
    }


def topic_quality(keywords: Sequence[Sequence[str]], documents: Sequence[Sequence[str]]) -> dict[str, float]:
    """NPMI, C_V and diversity in one record."""
    return {
        "npmi": coherence(keywords, documents, measure="c_npmi"),
        "c_v": coherence(keywords, documents, measure="c_v"),
        "diversity": diversity(keywords),
        "n_topics": len(keywords),
    }
