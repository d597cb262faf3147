"""Scores of predictions against gold labels, following the published protocols.

ACSA/ATSA polarity is scored on the gold aspects (the standard MAMS/SemEval protocol);
detection and joint aspect+polarity are micro-F1 over sets. A review whose analysis
is not ``ok`` (unparsed, error, abstained) has no answer: it counts as wrong for
accuracy and F1, never as a guessed label, and coverage says how many were answered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from topicsent.data import AspectLabel, LabelSpace, Review
from topicsent.schema import AspectSentiment, ReviewAnalysis, Task

NO_ANSWER = "<no answer>"


def status_counts(analyses: Sequence[ReviewAnalysis]) -> dict[str, int]:
    counts = Counter(a.status for a in analyses)
    return {status: counts.get(status, 0) for status in ("ok", "abstained", "unparsed", "error")}


def coverage(analyses: Sequence[ReviewAnalysis]) -> float:
    return sum(a.status == "ok" for a in analyses) / len(analyses) if analyses else 0.0


def polarity_scores(gold: Sequence[Review], predicted: Sequence[ReviewAnalysis], polarities: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 of aspect polarities on gold aspects (predictions made with
    ``given_aspects=True``). An aspect whose prediction is missing or misaligned counts wrong."""
    truth, guess = [], []
    for review, analysis in zip(gold, predicted, strict=True):
        answered = analysis.aspects if analysis.status == "ok" else []
        for position, aspect in enumerate(review.aspects):
            truth.append(aspect.polarity)
            match = answered[position] if position < len(answered) else None
            guess.append(match.polarity if match is not None and match.aspect == aspect.name else NO_ANSWER)
    if not truth:
        return {}
    labels = [p for p in polarities if p in set(truth)]
    return {
        "polarity_accuracy": accuracy_score(truth, guess),
        "polarity_macro_f1": f1_score(truth, guess, labels=labels, average="macro", zero_division=0),
        "n_aspects": len(truth),
    }


def _key(name: str, span: tuple[int | None, int | None], kind: str) -> tuple:
    """What identifies an aspect: a category's name; a term's span, or its lowercased
    name when it has no span."""
    if kind != "term":
        return (name,)
    return (span,) if span[0] is not None else (name.lower(),)


def _gold_key(aspect: AspectLabel, kind: str) -> tuple:
    return _key(aspect.name, (aspect.start, aspect.end), kind)


def _found_key(aspect: AspectSentiment, kind: str) -> tuple:
    return _key(aspect.aspect, (aspect.span.start, aspect.span.end) if aspect.span else (None, None), kind)


def _micro_f1(truth: list[set], guess: list[set]) -> dict[str, float]:
    hits = sum(len(t & g) for t, g in zip(truth, guess, strict=True))
    n_true, n_guess = sum(map(len, truth)), sum(map(len, guess))
    precision = hits / n_guess if n_guess else 0.0
    recall = hits / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def detection_scores(gold: Sequence[Review], predicted: Sequence[ReviewAnalysis], task: Task) -> dict[str, float]:
    """Micro P/R/F1 of which aspects a review has (``detection_*``), and of aspect and
    polarity together (``joint_*``), from predictions where the method found aspects itself."""
    kind = "term" if task is Task.ATSA else "category"
    true_aspects, found_aspects, true_pairs, found_pairs = [], [], [], []
    for review, analysis in zip(gold, predicted, strict=True):
        answered = analysis.aspects if analysis.status == "ok" else []
        true_aspects.append({_gold_key(a, kind) for a in review.aspects})
        found_aspects.append({_found_key(a, kind) for a in answered})
        true_pairs.append({(*_gold_key(a, kind), a.polarity) for a in review.aspects})
        found_pairs.append({(*_found_key(a, kind), a.polarity) for a in answered})
    detection = _micro_f1(true_aspects, found_aspects)
    joint = _micro_f1(true_pairs, found_pairs)
    return {f"detection_{k}": v for k, v in detection.items()} | {f"joint_{k}": v for k, v in joint.items()}


def triplet_scores(gold: Sequence[Review], predicted: Sequence[ReviewAnalysis]) -> dict[str, float]:
    """ASTE's exact-match scores, from predictions where the method found aspects itself:
    micro P/R/F1 of (aspect span, opinion span, polarity) triplets (``triplet_*``), of
    aspect term spans (``aspect_term_*``, the SemEval term-extraction protocol) and of
    opinion term spans (``opinion_term_*``). A found aspect without an opinion is a
    found term but no triplet."""
    truth: dict[str, list[set]] = {"triplet": [], "aspect_term": [], "opinion_term": []}
    guess: dict[str, list[set]] = {"triplet": [], "aspect_term": [], "opinion_term": []}
    for review, analysis in zip(gold, predicted, strict=True):
        answered = analysis.aspects if analysis.status == "ok" else []
        pairs = [(a.start, a.end, o.start, o.end, o.polarity or a.polarity) for a in review.aspects for o in a.opinions]
        truth["triplet"].append(set(pairs))
        truth["aspect_term"].append({(a.start, a.end) for a in review.aspects})
        truth["opinion_term"].append({(p[2], p[3]) for p in pairs})
        found = [a for a in answered if a.span is not None]
        with_opinion = [a for a in found if a.opinion_span is not None]
        guess["triplet"].append(
            {(a.span.start, a.span.end, a.opinion_span.start, a.opinion_span.end, a.polarity) for a in with_opinion}
        )
        guess["aspect_term"].append({(a.span.start, a.span.end) for a in found})
        guess["opinion_term"].append({(a.opinion_span.start, a.opinion_span.end) for a in with_opinion})
    return {f"{kind}_{k}": v for kind in truth for k, v in _micro_f1(truth[kind], guess[kind]).items()}


def rating_scores(gold: Sequence[Review], predicted: Sequence[ReviewAnalysis], space: LabelSpace) -> dict[str, float]:
    """Accuracy and macro-F1 over all reviews (no answer counts wrong); MAE and quadratic
    weighted kappa over answered reviews, with predictions rounded onto the scale."""
    truth = [r.rating for r in gold]
    low, high = space.rating_scale or (min(truth), max(truth))
    answers = [
        int(np.clip(round(a.overall.rating), low, high)) if a.status == "ok" and a.overall.rating is not None else None
        for a in predicted
    ]
    guess_labels = [str(g) if g is not None else NO_ANSWER for g in answers]
    truth_labels = [str(t) for t in truth]
    answered = [(t, g) for t, g in zip(truth, answers, strict=True) if g is not None]
    scores = {
        "accuracy": accuracy_score(truth_labels, guess_labels),
        "macro_f1": f1_score(truth_labels, guess_labels, labels=sorted(set(truth_labels)), average="macro", zero_division=0),
    }
    if answered:
        t, g = map(np.array, zip(*answered, strict=True))
        scores["mae"] = float(np.abs(t - g).mean())
        scores["qwk"] = float(cohen_kappa_score(t, g, weights="quadratic", labels=list(range(low, high + 1))))
    return scores


def primary_metric(task: Task, space: LabelSpace) -> str:
    """The metric the harness tunes on and ranks by."""
    if task is not Task.RATING:
        return "polarity_accuracy"
    low, high = space.rating_scale or (0, 1)
    return "accuracy" if high - low == 1 else "qwk"


def expected_calibration_error(confidence, correct, bins: int = 10) -> float:
    """How far stated confidence is from observed accuracy: the mean over ten equal-width
    confidence bins of |accuracy - mean confidence|, weighted by the answers in each bin."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if not len(confidence):
        return float("nan")
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gaps = [abs(correct[which == b].mean() - confidence[which == b].mean()) * np.sum(which == b) for b in np.unique(which)]
    return float(sum(gaps) / len(confidence))
