"""Aspect term and opinion extraction (``extract``), ASTE triplet data and their scores."""

from __future__ import annotations

import itertools
import random
import shutil

import numpy as np
import pytest

from topicsent.data import AspectLabel, OpinionLabel, Review, ReviewSet, load_dataset
from topicsent.errors import InputDataError, InvalidParameterError
from topicsent.eval import triplet_scores
from topicsent.methods import BaseMethod, _finetuning, _tagger, make_method
from topicsent.methods._terms import FINDER_FOLDER, TermLexicon
from topicsent.schema import AspectSentiment, ReviewAnalysis, Span, Task, to_dataframe

#: A review of a product no training sentence is about (a laptop, for a restaurant model).
#: (A made-up gadget, "The zorblatt's hinge broke after a week, though its screen is
#: bright.", got no term from a tagger trained 2 epochs on these 300 sentences.)
UNSEEN_PRODUCTS = ["The battery life is amazing and the keyboard feels solid, but the trackpad is awful."]


def test_aste_loaders_read_every_triplet_at_its_words():
    res = load_dataset("aste-14res")
    assert (len(res.train), len(res.validation), len(res.test)) == (1266, 310, 492)
    assert sum(len(a.opinions) for r in res.train for a in r.aspects) == 2338  # the README's count
    first = res.train[0]
    assert first.text == "But the staff was so horrible to us ."
    (staff,) = first.aspects
    assert (staff.name, staff.polarity) == ("staff", "negative")
    assert [first.text[o.start : o.end] for o in staff.opinions] == ["horrible"]
    lap = load_dataset("aste-14lap")
    assert len(lap.test) == 328 and sum(len(a.opinions) for r in lap.test for a in r.aspects) == 543
    for review in [*res.test, *lap.train]:
        for aspect in review.aspects:
            assert review.text[aspect.start : aspect.end] == aspect.name
            assert all(review.text[o.start : o.end].strip() == review.text[o.start : o.end] for o in aspect.opinions)


def test_mams_nested_terms_keep_the_longer_one():
    review = next(r for r in load_dataset("mams-atsa").train if r.id == "train-1191")
    assert [a.name for a in review.aspects] == ["beer selection"]


def _set(reviews: list[Review]) -> ReviewSet:
    return ReviewSet(tuple(reviews), name="train.jsonl")


def _term(text: str, term: str, polarity: str = "positive") -> AspectLabel:
    start = text.index(term)
    return AspectLabel(term, "term", polarity, start, start + len(term))


def test_training_data_with_overlapping_or_outside_spans_is_refused_naming_the_row():
    good = [Review(f"r{i}", text, aspects=(_term(text, word, polarity),)) for i, (text, word, polarity) in enumerate(
        [("Great pasta here.", "pasta", "positive"), ("Rude waiter.", "waiter", "negative")] * 3)]  # fmt: skip
    text = "The seafood platter was cold."
    overlapping = Review(
        "r-overlap", text, aspects=(_term(text, "seafood platter", "negative"), _term(text, "seafood", "negative"))
    )
    with pytest.raises(InputDataError, match=r"train.jsonl: review 'r-overlap': terms 'seafood' .* overlap"):
        make_method("extract", epochs=1).fit(_set([*good, overlapping]), "atsa")
    outside = Review("r-out", text, aspects=(AspectLabel("platter", "term", "negative", 12, 19, (OpinionLabel(24, 99),)),))
    with pytest.raises(InputDataError, match=r"review 'r-out'.*opinion span 24-99 .* outside the text"):
        make_method("extract", epochs=1).fit(_set([*good, outside]), "atsa")


def test_decoded_spans_are_always_whole_words_of_the_text():
    """Whatever tags the model gives (random here, on real review text and the real
    tokenizer), a decoded span is the text at its offsets: inside it, not empty, not
    starting or ending in a space or in the middle of a word."""
    from transformers import AutoTokenizer

    from topicsent.encoders import resolve_encoder

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder("all-MiniLM-L6-v2"))
    rng = np.random.default_rng(0)
    texts = [r.text for r in load_dataset("semeval14-atsa").test[:50]] + ["Ça coûte 12€ — très cher!!", "  spaced   out  "]
    for text in texts:
        offsets = [tuple(o) for o in tokenizer(text, return_offsets_mapping=True)["offset_mapping"]]
        for _ in range(5):
            for start, end in _tagger._decode(text, offsets, rng.integers(0, 3, len(offsets))):
                assert 0 <= start < end <= len(text) and text[start:end] == text[start:end].strip()
                assert not (start > 0 and text[start - 1].isalnum() and text[start].isalnum())
                assert not (end < len(text) and text[end].isalnum() and text[end - 1].isalnum())


def test_gold_tags_decode_back_to_the_gold_terms():
    """The training targets say what the scores count: every subword of a term is tagged
    (B on its first, I on the rest), and decoding those tags gives back exactly the gold
    spans of every ASTE sentence. (In SemEval-14 three gold terms end inside a word,
    'dress cod' of 'dress code': those come back as the whole word.)"""
    from transformers import AutoTokenizer

    from topicsent.encoders import resolve_encoder
    from topicsent.methods._tagger import BEGIN

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder("all-MiniLM-L6-v2"))
    side_by_side = {"aste-14res": 0, "aste-14lap": 0}
    for name in side_by_side:
        splits = load_dataset(name)
        for review in [*splits.train, *splits.test]:
            spans = sorted({(a.start, a.end) for a in review.aspects})
            offsets = [tuple(o) for o in tokenizer(review.text, return_offsets_mapping=True)["offset_mapping"]]
            tags = _tagger._tags(offsets, spans)
            assert tags.count(BEGIN) == len(spans), review.id  # one B per term, its other subwords I
            if any(not review.text[end:start].strip() for (_, end), (start, _) in itertools.pairwise(spans)):
                side_by_side[name] += 1  # two terms with only a space between: decoded as one (see below)
                continue
            assert _tagger._decode(review.text, offsets, np.array(tags)) == spans, review.id
    assert side_by_side == {"aste-14res": 4, "aste-14lap": 0}


def test_a_tagged_word_right_after_another_continues_its_term():
    """A token head tags each token alone and puts B on both words of a two-word term;
    terms side by side are almost never annotated, so the two are one term. Punctuation
    or an untagged word between two tagged words keeps them apart."""
    from transformers import AutoTokenizer

    from topicsent.encoders import resolve_encoder
    from topicsent.methods._tagger import BEGIN, IGNORE, OUTSIDE

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder("all-MiniLM-L6-v2"))
    text = "Great Japanese food, service and decor."
    offsets = [tuple(o) for o in tokenizer(text, return_offsets_mapping=True)["offset_mapping"]]
    words = {"Japanese", "food", "service", "decor"}
    tags = [IGNORE if end <= start else BEGIN if text[start:end] in words else OUTSIDE for start, end in offsets]
    decoded = _tagger._decode(text, offsets, np.array(tags))
    assert [text[start:end] for start, end in decoded] == ["Japanese food", "service", "decor"]


def test_early_stopping_watches_the_tags_not_the_polarity_heads():
    """Validation keeps the epoch whose tags are best: tags that are right and polarity
    and pair heads that are wrong (they overfit first) give a near-zero validation loss."""
    import torch

    from topicsent.methods._finetuning import Batches, Objective
    from topicsent.methods._tagger import IGNORE

    tags = torch.tensor([[0, 1, 2, 0, IGNORE]])
    sure = torch.nn.functional.one_hot(tags.clamp(min=0), 3).float() * 20
    wrong = torch.tensor([[20.0, 0.0, 0.0]])
    outputs = {"aspect_tags": sure, "opinion_tags": sure, "polarity": wrong, "pair": wrong}
    targets = {"aspect_tags": tags, "opinion_tags": tags, "polarity": torch.tensor([2]), "pair": torch.tensor([1])}

    class Fixed(torch.nn.Module):
        def forward(self, **_):
            return outputs

    rows = Batches([5], lambda _: {}, lambda _: targets)
    objective = Objective(_tagger._loss, _tagger._tag_hits, _tagger._tag_loss)
    loss, accuracy = _finetuning._validate(Fixed(), rows, objective, 8, None, None)
    assert loss < 1e-6 < 10 < float(_tagger._loss(outputs, targets)) and accuracy == 1.0


def test_triplet_scores_count_exact_matches_only():
    text = "But the staff was so horrible to us ."
    gold = [Review("1", text, aspects=(AspectLabel("staff", "term", "negative", 8, 13, (OpinionLabel(21, 29, "negative"),)),))]
    right = AspectSentiment(aspect="staff", kind="term", polarity="negative", span=Span(start=8, end=13),
                            opinion="horrible", opinion_span=Span(start=21, end=29))  # fmt: skip
    wrong_polarity = right.model_copy(update={"polarity": "positive"})
    wrong_opinion = right.model_copy(update={"opinion": "so horrible", "opinion_span": Span(start=18, end=29)})
    score = lambda found: triplet_scores(gold, [ReviewAnalysis(review_id="1", method="x", aspects=found)])  # noqa: E731
    assert score([right])["triplet_f1"] == 1.0
    assert score([wrong_polarity])["triplet_f1"] == 0.0 and score([wrong_polarity])["opinion_term_f1"] == 1.0
    both = score([wrong_opinion])
    assert both["triplet_f1"] == 0.0 and both["aspect_term_f1"] == 1.0 and both["opinion_term_f1"] == 0.0


def test_flat_table_carries_aspect_and_opinion_spans():
    found = AspectSentiment(aspect="staff", kind="term", polarity="negative", evidence="staff", span=Span(start=8, end=13),
                            opinion="horrible", opinion_span=Span(start=21, end=29))  # fmt: skip
    row = to_dataframe([ReviewAnalysis(review_id="1", method="extract", aspects=[found])]).iloc[0]
    assert (row.span_start, row.span_end, row.opinion, row.opinion_start, row.opinion_end) == (8, 13, "horrible", 21, 29)


def test_report_example_marks_the_aspect_and_its_opinion():
    from topicsent.report import _render

    text = "But the staff was so horrible to us ."
    example = _render._example({"text": text, "span": (8, 13), "opinion": (21, 29), "polarity": "negative"})
    marked = [(p["text"], p["mark"]) for p in example["pieces"] if p["mark"]]
    assert marked == [("staff", "negative"), ("horrible", "opinion")]
    assert "".join(p["text"] for p in example["pieces"]) == text
    beyond = _render._example({"text": text, "span": (8, 13), "opinion": (30, 99), "polarity": "negative"})
    assert [p["text"] for p in beyond["pieces"] if p["mark"]] == ["staff"]  # a span outside the text is not marked


@pytest.fixture(scope="module")
def restaurant_extractor():
    """``extract`` with its defaults (MiniLM) trained on 300 restaurant triplet sentences:
    the tagger that is also the default term finder of the other ATSA methods."""
    train = load_dataset("aste-14res").train.sample(300, seed=1)
    return make_method("extract", random_state=0).fit(train), train


def test_unseen_product_terms_are_found_by_the_tagger_not_the_dictionary(restaurant_extractor):
    model, train = restaurant_extractor
    dictionary = TermLexicon.learn(train)
    found = model.predict(UNSEEN_PRODUCTS)
    for text, analysis in zip(UNSEEN_PRODUCTS, found, strict=True):
        terms = {a.aspect for a in analysis.aspects}
        assert terms, f"the tagger found no term in {text!r}"
        assert not terms & {a.name for a in dictionary.extract(text)}, "these terms are not in the restaurant dictionary"
        for aspect in analysis.aspects:
            assert text[aspect.span.start : aspect.span.end] == aspect.aspect == aspect.evidence
            if aspect.opinion_span:
                assert text[aspect.opinion_span.start : aspect.opinion_span.end] == aspect.opinion
    laptop = {a.aspect for a in found[0].aspects}
    assert laptop & {"battery life", "keyboard", "trackpad"}, laptop


def test_predicted_spans_always_match_the_text(restaurant_extractor):
    model, _ = restaurant_extractor
    tests = load_dataset("aste-14lap").test.sample(40, seed=3)
    noisy = [Review(f"n{i}", "".join(random.Random(i).sample(r.text, len(r.text)))) for i, r in enumerate(tests[:10])]
    for review, analysis in zip([*tests.text_only(), *noisy], model.predict([*tests.text_only(), *noisy]), strict=True):
        for aspect in analysis.aspects:
            assert review.text[aspect.span.start : aspect.span.end] == aspect.aspect
            if aspect.opinion_span is not None:
                assert review.text[aspect.opinion_span.start : aspect.opinion_span.end] == aspect.opinion


def test_atsa_methods_find_terms_with_the_trained_tagger_by_default(restaurant_extractor, tmp_path):
    """Without given terms, an ATSA method finds them with a tagger trained on its
    training terms (one per training set: methods trained on the same reviews share it),
    so it finds terms of a product it never saw; the tagger is saved with the model, and
    a saved ``extract`` model can be the finder."""
    extractor, train = restaurant_extractor
    tfidf, majority = make_method("tfidf-lr").fit(train), make_method("majority").fit(train)
    assert tfidf.term_finder == "auto" and tfidf.term_tagger_ is majority.term_tagger_ is extractor.tagger_  # auto: trained here
    found = tfidf.predict(UNSEEN_PRODUCTS)
    assert {a.aspect for a in found[0].aspects} == {a.aspect for a in extractor.predict(UNSEEN_PRODUCTS)[0].aspects}
    assert {a.aspect for a in found[0].aspects} & {"battery life", "keyboard", "trackpad"}
    assert not make_method("tfidf-lr", term_finder="dictionary").fit(train).predict(UNSEEN_PRODUCTS)[0].aspects
    for text, analysis in zip(UNSEEN_PRODUCTS, found, strict=True):
        assert all(text[a.span.start : a.span.end] == a.aspect == a.evidence for a in analysis.aspects)

    # each term's first linked opinion is its evidence of why, as in extract's triplets
    def pairs(analysis):
        return {(a.span.start, a.span.end, a.opinion_span.start, a.opinion_span.end) for a in analysis.aspects if a.opinion_span}

    triplets, explained = pairs(extractor.predict(UNSEEN_PRODUCTS)[0]), pairs(found[0])
    assert explained and explained <= triplets and {p[:2] for p in explained} == {p[:2] for p in triplets}

    tfidf.save(tmp_path / "tfidf")
    assert (tmp_path / "tfidf" / FINDER_FOLDER).is_dir()
    assert [a.aspects for a in BaseMethod.load(tmp_path / "tfidf").predict(UNSEEN_PRODUCTS)] == [a.aspects for a in found]
    extractor.save(tmp_path / "extract")
    borrower = make_method("majority", term_finder=str(tmp_path / "extract")).fit(train)
    borrowed = borrower.predict(UNSEEN_PRODUCTS)
    assert [a.span for a in borrowed[0].aspects] == [a.span for a in found[0].aspects]
    borrower.save(tmp_path / "majority")
    shutil.rmtree(tmp_path / "extract")  # the model keeps its own copy of the tagger
    assert [a.aspects for a in BaseMethod.load(tmp_path / "majority").predict(UNSEEN_PRODUCTS)] == [a.aspects for a in borrowed]


def test_a_term_finder_that_is_no_extract_model_is_refused_before_training(tmp_path):
    train = load_dataset("aste-14res").train.sample(40, seed=2)
    with pytest.raises(InvalidParameterError, match=r"'term_finder' parameter of TfidfLRMethod must be .* no such folder"):
        make_method("tfidf-lr", term_finder="models/none").fit(train)
    make_method("majority", term_finder="dictionary").fit(train).save(tmp_path / "majority")
    with pytest.raises(InvalidParameterError, match=r"is a saved 'majority' model; it must be an 'extract' model"):
        make_method("tfidf-lr", term_finder=str(tmp_path / "majority")).fit(train)
    unplaced = ReviewSet(
        (Review("r0", "Rude waiter.", aspects=(_term("Rude waiter.", "waiter", "negative"),)),
         Review("r1", "Great pasta.", aspects=(AspectLabel("pasta", "term", "positive"),))),
        name="mine.csv",
    )  # fmt: skip
    with pytest.raises(InputDataError, match=r"mine.csv: review 'r1': a term without a span .* term_finder='dictionary'"):
        make_method("majority", term_finder="trained").fit(unplaced, "atsa")  # asked for by name: no fallback


@pytest.mark.parametrize("why", ["no torch", "terms without spans"])
def test_the_auto_term_finder_falls_back_to_the_dictionary_where_it_cannot_train(why, monkeypatch):
    """``term_finder="auto"`` (the default) trains a tagger only where it can: without
    torch (a core install) or with terms that have no offsets, baselines still train on
    ATSA data and find terms with the dictionary."""
    import importlib.util

    texts = [("The pasta was great.", "pasta", "positive"), ("Slow service here.", "service", "negative")] * 4
    reviews = [Review(f"r{i}", text, aspects=(_term(text, word, polarity),)) for i, (text, word, polarity) in enumerate(texts)]
    if why == "no torch":
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    else:
        unplaced = [AspectLabel(r.aspects[0].name, "term", r.aspects[0].polarity) for r in reviews]
        reviews = [Review(r.id, r.text, aspects=(label,)) for r, label in zip(reviews, unplaced, strict=True)]
    method = make_method("tfidf-lr").fit(ReviewSet(tuple(reviews), name="train.jsonl", task=Task.ATSA))
    assert method.term_tagger_ is None  # the dictionary
    (found,) = method.predict([Review("new", "Their pasta is cold.")])
    assert [a.aspect for a in found.aspects] == ["pasta"]
