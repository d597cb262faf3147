"""Topic models on real reviews: word analysis, the lda baseline, discovery, quality, drivers."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from topicsent.data import load_dataset
from topicsent.errors import InputDataError, InvalidParameterError
from topicsent.eval import score
from topicsent.interfaces.cli import app
from topicsent.methods import BaseMethod, make_method
from topicsent.text import content_words, split_sentences
from topicsent.topics import Taxonomy, Topic, alignment, coherence, diversity

HANGUL = re.compile(r"[\uac00-\ud7a3]")
N_CLOTHING = 500


def test_english_content_words_are_lemmas_without_stopwords():
    words = content_words(["The waiters were rude, but the dresses ran small and I loved them!"], "en")[0]
    assert words == ["waiter", "rude", "dress", "run", "small", "love"]


def test_korean_content_words_are_nouns_and_adjectives_without_particles():
    words = content_words(["배우들 연기가 정말 좋았다. 스토리는 지루하고 음악은 최고!"], "ko")[0]
    assert {"배우", "연기", "스토리", "음악", "최고", "좋다"} <= set(words)
    assert not any(w.endswith(("들", "가", "는", "은")) for w in words)


def test_sentences_are_spans_of_the_text():
    text = "Great fit. The fabric is thin!  Would not buy again\nbut cute"
    spans = split_sentences(text, "en")
    assert [text[s:e] for s, e in spans] == ["Great fit.", "The fabric is thin!", "Would not buy again", "but cute"]
    korean = "연기가 좋았다. 결말은 별로였음"
    assert len(split_sentences(korean, "ko")) == 2


# ----- the lda baseline ----------------------------------------------------------------------


def _majority_and(method_spec: str, splits, **params):
    majority, _, _ = score(make_method("majority").fit(splits.train), splits.test)
    method = make_method(method_spec, **params).fit(splits.train)
    return majority, score(method, splits.test)[0], method


def test_lda_rates_womens_clothing_better_than_majority_and_names_topics():
    splits = load_dataset("womens-clothing").limited(3000, seed=0)
    majority, metrics, method = _majority_and("lda", splits, n_topics=10, iterations=100)
    assert metrics["qwk"] >= 0.35 and metrics["mae"] < majority["mae"] - 0.1
    analysis = method.predict(splits.test.text_only()[:20])
    assert all(r.aspects for r in analysis)  # every review has at least its main topic
    topics = [a for r in analysis for a in r.aspects]
    assert all(a.kind == "topic" and a.aspect.startswith("topic ") for a in topics)
    assert all(a.polarity == r.overall.polarity for r in analysis for a in r.aspects)  # review sentiment spread over topics


def test_lda_on_korean_movie_reviews_finds_korean_topic_words(korean_ratings):
    train, test = korean_ratings
    method = make_method("lda", n_topics=8, iterations=100, remove_top=3).fit(train)
    keywords = [w for words in method.topic_keywords(5) for w in words]
    assert sum(bool(HANGUL.search(w)) for w in keywords) >= 0.8 * len(keywords)
    majority, _, _ = score(make_method("majority").fit(train), test)
    metrics, _, _ = score(method, test)
    assert metrics["qwk"] > 0.15 and metrics["qwk"] > majority["qwk"]


def test_lda_acsa_maps_topics_to_categories_but_gives_one_sentiment_per_review():
    splits = load_dataset("mams-acsa").limited(1500, seed=0)
    majority, metrics, method = _majority_and("lda", splits, n_topics=15, iterations=100)
    assert metrics["detection_f1"] >= 0.5
    assert metrics["polarity_accuracy"] >= majority["polarity_accuracy"] - 0.02
    multi = [r for r in method.predict(splits.test.text_only()) if len(r.aspects) > 1]
    assert multi and all(len({a.polarity for a in r.aspects}) == 1 for r in multi)


# ----- taxonomy and quality measures ----------------------------------------------------------


def _taxonomy() -> Taxonomy:
    return Taxonomy(
        topics=[
            Topic(id=0, name="fit", keywords=["size", "fit"], size=30, examples=["runs small"]),
            Topic(id=1, name="fabric", keywords=["fabric", "soft"], size=20, examples=["soft fabric"]),
            Topic(id=2, name="material", keywords=["material", "fabric"], size=10, examples=["thin material"]),
        ]
    )


def test_taxonomy_merge_and_rename(tmp_path):
    edited = _taxonomy().merged([1, 2], "fabric & material").renamed({0: "sizing"})
    assert edited.categories == ("sizing", "fabric & material")
    merged = edited.topic(1)
    assert merged.size == 30 and merged.merged_from == [2] and merged.keywords == ["fabric", "soft", "material"]
    assert edited.merge_map() == {2: 1}
    assert Taxonomy.load(edited.save(tmp_path / "t.json")) == edited
    with pytest.raises(InvalidParameterError, match="no topic 7"):
        edited.renamed({7: "x"})
    with pytest.raises(ValueError, match="unique"):
        edited.renamed({0: "fabric & material"})


def test_taxonomy_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"topics": [{"id": 0, "name": ""}]}))
    with pytest.raises(InputDataError, match=r"topics\.0\.name"):
        Taxonomy.load(bad)
    with pytest.raises(InputDataError, match="not found"):
        Taxonomy.load(tmp_path / "missing.json")


def test_coherence_prefers_words_that_occur_together():
    reviews = load_dataset("womens-clothing").test.sample(1500, seed=0)
    documents = content_words([r.text for r in reviews], "en")
    together = [["size", "small", "run", "large"], ["fabric", "soft", "material", "thin"]]
    shuffled = [["size", "soft", "run", "thin"], ["fabric", "small", "material", "large"]]
    assert coherence(together, documents) > coherence(shuffled, documents) + 0.05
    assert diversity([["a", "b"], ["b", "c"]]) == 0.75


def test_topic_names_are_unique_and_never_empty():
    from topicsent.topics._discover import topic_name

    assert topic_name(["fit", "size", "small", "run"], 0, set()) == "fit_size_small"
    assert topic_name(["fit", "size", "small"], 4, {"fit_size_small"}) == "fit_size_small_4"
    assert topic_name([], 7, set()) == "topic_7"


def test_outliers_join_only_a_close_enough_topic():
    from topicsent.topics import OUTLIER, reassign_outliers

    vectors = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [1, 0.05], [-1, -1]], dtype=float)
    topics = np.array([0, 0, 1, 1, OUTLIER, OUTLIER])
    assert reassign_outliers(topics, vectors, 0.9).tolist() == [0, 0, 1, 1, 0, OUTLIER]
    assert OUTLIER not in reassign_outliers(topics, vectors, -1.0)


def clustered_with_outliers():
    """Two tight topics of 20 units (similarities to their centre spread from ~0.9 to 1) and outliers at known angles."""
    from topicsent.topics import OUTLIER

    spread = np.linspace(0, 0.45, 20)
    members = [[1, a, 0] for a in spread] + [[0, 1, a] for a in spread]
    outliers = [[1, 0.1, 0], [0, 1, 0.3], [1, 1, 0], [0, 0, 1], [-1, 0, 0]]  # close, close, between, far, opposite
    vectors = np.array(members + outliers, dtype=float)
    topics = np.array([0] * 20 + [1] * 20 + [OUTLIER] * len(outliers))
    return topics, vectors


def test_outliers_join_their_nearest_topic_under_an_automatic_threshold():
    from topicsent.topics import AUTO_MEMBER_SHARE, OUTLIER, assign_outliers

    topics, vectors = clustered_with_outliers()
    assigned, report = assign_outliers(topics, vectors)
    assert assigned[:40].tolist() == topics[:40].tolist()  # clustered units keep their topic
    assert assigned[40:].tolist() == [0, 1, OUTLIER, OUTLIER, OUTLIER]  # only the two close ones join
    assert report.rule == "auto" and report.found == 5 and report.joined == 2 and report.member_share == AUTO_MEMBER_SHARE
    # the threshold is the similarity 95% of the members reach: 2 of 40 are below it
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    centres = [unit[topics == t].mean(axis=0) / np.linalg.norm(unit[topics == t].mean(axis=0)) for t in (0, 1)]
    own = np.concatenate([unit[topics == t] @ centres[t] for t in (0, 1)])
    assert (own < report.threshold).sum() == 2
    sentence = report.explain(len(topics), "sentence")
    assert "Clustering left 5 of 45 sentences (11%) in no topic; 2 of them joined their nearest topic" in sentence
    assert f">= {report.threshold:.3f}, chosen automatically: 95% of clustered sentences" in sentence
    assert "3 (7%) remain in no topic" in sentence


def test_a_target_outlier_share_lets_the_most_similar_outliers_join_first():
    from topicsent.topics import OUTLIER, assign_outliers

    topics, vectors = clustered_with_outliers()
    assigned, report = assign_outliers(topics, vectors, share=2 / 45)
    assert (assigned == OUTLIER).sum() == 2 and report.rule == "share" and report.joined == 3
    assert assigned[40:].tolist() == [0, 1, 0, OUTLIER, OUTLIER]  # "between" (cosine 0.7) joins before "far" and "opposite"
    assert "chosen so that at most 4% stay in no topic" in report.explain(len(topics))

    kept, already = assign_outliers(topics, vectors, share=0.5)  # clustering already leaves fewer out
    assert (kept == topics).all() and already.joined == 0 and "already within the target of 50%" in already.explain(45)
    everything, _ = assign_outliers(topics, vectors, share=0.0)
    assert OUTLIER not in everything

    untouched, none = assign_outliers(topics, vectors, threshold=None)
    assert (untouched == topics).all() and none.rule == "none" and "they stay there" in none.explain(45)
    given, fixed = assign_outliers(topics, vectors, threshold=0.9)
    assert fixed.rule == "threshold" and fixed.threshold == 0.9 and given[40:].tolist() == [0, 1, OUTLIER, OUTLIER, OUTLIER]


@pytest.mark.parametrize(("threshold", "share", "message"), [
    ("sometimes", None, "must be 'auto', a number in [-1, 1] or None"),
    (1.5, None, "in [-1, 1]; got 1.5"),
    ("auto", 1.2, "outlier_share must be in [0, 1]"),
    (0.5, 0.1, "not both"),
    (None, 0.1, "not both"),
])  # fmt: skip
def test_bad_outlier_options_are_refused(threshold, share, message):
    from topicsent.topics import assign_outliers

    topics, vectors = clustered_with_outliers()
    with pytest.raises(InvalidParameterError, match=re.escape(message)):
        assign_outliers(topics, vectors, threshold=threshold, share=share)


def test_alignment_of_a_perfect_and_a_useless_clustering():
    gold = ["food", "food", "staff", "staff", "price", "price"]
    assert alignment([3, 3, 1, 1, 0, 0], gold) == {"nmi": 1.0, "ari": 1.0, "purity": 1.0}
    useless = alignment([0, 0, 0, 0, 0, 0], gold)
    assert useless["nmi"] == 0.0 and useless["purity"] == pytest.approx(1 / 3)


# ----- discovery -> per-topic sentiment -> drivers -> ACSA training, through the CLI -----------


@pytest.fixture(scope="module")
def clothing_csv(tmp_path_factory):
    reviews = load_dataset("womens-clothing").test.sample(N_CLOTHING, seed=3)
    frame = pd.DataFrame({
        "review_id": [r.id for r in reviews], "body": [r.text for r in reviews], "stars": [r.rating for r in reviews],
        "date": pd.date_range("2026-01-01", periods=len(reviews), freq="8h").astype(str),
    })  # fmt: skip
    path = tmp_path_factory.mktemp("clothing") / "reviews.csv"
    frame.to_csv(path, index=False)
    return path


def test_cross_fitted_sentiment_finds_complaints():
    from topicsent.topics import segments_of
    from topicsent.topics._drivers import segment_polarities

    reviews = load_dataset("womens-clothing").test.sample(2000, seed=4)
    predicted = np.array(segment_polarities(segments_of(reviews, "review", "en"), reviews))
    gold = np.array([reviews.label_space.rating_polarity(r.rating) for r in reviews])
    assert (predicted == gold).mean() >= 0.75
    assert (predicted[gold == "negative"] == "negative").mean() >= 0.25  # balanced classes: complaints are not drowned


def test_topics_command_discovers_rates_and_feeds_acsa_training(clothing_csv, tmp_path):
    runner = CliRunner()
    out = tmp_path / "topics"
    columns = ["--text-col", "body", "--id-col", "review_id"]
    result = runner.invoke(
        app, ["topics", str(clothing_csv), *columns, "--rating-col", "stars", "--date-col", "date", "-o", str(out)],
        env={"COLUMNS": "80"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    taxonomy = Taxonomy.load(out / "taxonomy.json")
    assert len(taxonomy.topics) >= 3 and taxonomy.n_segments == N_CLOTHING
    assert sum(t.size for t in taxonomy.topics) + taxonomy.n_outliers == N_CLOTHING  # outliers reported, not forced
    segments = pd.read_parquet(out / "segments.parquet")
    assert len(segments) == N_CLOTHING and set(segments.polarity) <= {"positive", "negative", "neutral"}
    # by default most outliers of clustering join their nearest topic; the summary says how many stay out and why
    outliers = taxonomy.outliers
    assert outliers.rule == "auto" and outliers.found - outliers.joined == taxonomy.n_outliers < 0.15 * N_CLOTHING
    assert outliers.joined > 0 and segments.joined.sum() == outliers.joined and (segments.topic[segments.joined] >= 0).all()
    assert outliers.explain(N_CLOTHING, "review") in result.output
    # printed (not a terminal, COLUMNS=80) with nothing cut: every topic's name and size, and the units in no topic
    assert "…" not in result.output
    for topic in taxonomy.topics:
        assert re.search(rf"│ +{topic.id} │ {re.escape(topic.name)} +│ +{topic.size:,} │", result.output), topic.name
    assert re.search(rf"│ +-1 │ \(no topic\) +│ +{taxonomy.n_outliers:,} │", result.output)
    assert segments.polarity.value_counts()["positive"] < N_CLOTHING

    drivers = pd.read_csv(out / "drivers.csv")
    significant = drivers[drivers.significant]
    assert len(significant) >= 1
    # clear drivers point the expected way: praise with more stars, complaints with fewer
    # (not all: with 500 reviews, correlated topic indicators can flip a weak one)
    assert ((significant.polarity == "positive") == (significant.effect > 0)).mean() >= 0.75
    summary = pd.read_csv(out / "topics.csv")
    assert summary.reviews.sum() >= 0.5 * N_CLOTHING and summary.mean_rating.between(1, 5).all()
    assert len(pd.read_csv(out / "trend.csv")) > 0

    first, second = taxonomy.topics[0].id, taxonomy.topics[1].id
    edit = runner.invoke(
        app, ["topics-edit", str(out), "--merge", f"{first},{second}=merged", "--rename", f"{taxonomy.topics[2].id}=renamed"]
    )
    assert edit.exit_code == 0, edit.output
    edited = Taxonomy.load(out / "taxonomy.json")
    assert "merged" in edited.categories and "renamed" in edited.categories and len(edited.topics) == len(taxonomy.topics) - 1
    assert (pd.read_parquet(out / "segments.parquet").topic != second).all()

    model_dir = tmp_path / "model"
    trained = runner.invoke(app, [
        "train", str(out / "labelled.jsonl"), "--id-col", "id", "--aspects-col", "aspects",
        "--taxonomy", str(out / "taxonomy.json"), "-o", str(model_dir),
    ])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    model = BaseMethod.load(model_dir)
    assert model.task_.value == "acsa" and model.label_space_.categories == edited.categories

    # the trained topic model analyses the reviews with their own stars; the report finds what drives them
    run = tmp_path / "run"
    analysed = runner.invoke(app, ["analyze", "--model", str(model_dir), str(clothing_csv), *columns, "--rating-col", "stars",
                                   "-o", str(run), "--chunk-size", "200"])  # fmt: skip
    assert analysed.exit_code == 0, analysed.output
    reported = runner.invoke(app, ["report", str(run), "-o", str(tmp_path / "report.html")])
    assert reported.exit_code == 0, reported.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    charts = ("Mention share by aspect", "Sentiment by aspect", "The reviewers&#39; own ratings", "Key drivers of the rating")
    assert all(f'data-chart="{chart}"' in html for chart in charts)
    assert "<tr><td>merged</td>" in html and '<table class="drivers">' in html


def test_topics_target_outlier_share_and_json_output(clothing_csv, tmp_path):
    args = ["topics", str(clothing_csv), "--text-col", "body", "--id-col", "review_id", "--rating-col", "stars"]
    result = CliRunner().invoke(app, [*args, "--outlier-share", "0.02", "--format", "json", "-o", str(tmp_path / "share")])
    assert result.exit_code == 0, result.output
    [table] = json.loads(result.stdout)["tables"]  # stdout is the JSON alone; the sentences went to stderr
    taxonomy = Taxonomy.load(tmp_path / "share" / "taxonomy.json")
    assert taxonomy.outliers.rule == "share" and taxonomy.n_outliers <= 0.02 * N_CLOTHING
    assert table["rows"][-1] == {"id": -1, "topic": "(no topic)", "units": taxonomy.n_outliers} | dict.fromkeys(
        ["reviews", "review_share", "positive", "negative", "mixed", "mean_rating"]
    )
    assert [(r["id"], r["topic"], r["units"]) for r in table["rows"][:-1]] == [(t.id, t.name, t.size) for t in taxonomy.topics]
    assert "at most 2% stay in no topic" in result.stderr

    kept = CliRunner().invoke(app, [*args, "--outlier-threshold", "none", "-o", str(tmp_path / "kept")])
    assert kept.exit_code == 0, kept.output
    before = Taxonomy.load(tmp_path / "kept" / "taxonomy.json")
    assert before.outliers.rule == "none" and before.n_outliers == before.outliers.found == taxonomy.outliers.found > 0
    assert "they stay there" in kept.output


def test_topics_needs_enough_reviews(tmp_path):
    path = tmp_path / "few.csv"
    pd.DataFrame({"text": ["good dress", "bad fit"] * 5}).to_csv(path, index=False)
    result = CliRunner().invoke(app, ["topics", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code != 0 and "at least 20" in str(result.exception or result.output)


def test_discovery_without_ratings_gives_topics_and_sentiment_from_a_model(clothing_csv):
    from topicsent.data import ColumnMap, read_reviews
    from topicsent.topics import analyze_topics

    reviews = read_reviews(clothing_csv, ColumnMap(text="body", id="review_id"))[:300]
    analysis = analyze_topics(reviews, min_topic_size=10)
    assert analysis.summary is None and analysis.drivers is None and "polarity" not in analysis.segments
    topic_words = [w for t in analysis.discovery.taxonomy.topics for w in t.keywords]
    assert topic_words and np.mean([w.isalpha() for w in topic_words]) > 0.9

    forced = analyze_topics(reviews, min_topic_size=10, outlier_threshold=-1.0).discovery.taxonomy
    assert forced.n_outliers == 0 and sum(t.size for t in forced.topics) == len(reviews)

    sentiment = make_method("tfidf-lr").fit(load_dataset("womens-clothing").train.sample(4000, seed=0))
    rated = analyze_topics(reviews, min_topic_size=10, sentiment_method=sentiment)
    assert rated.drivers is None  # no ratings: nothing to regress on
    assert rated.summary.reviews.sum() == (rated.segments.topic >= 0).sum()
    assert set(rated.segments.polarity) <= {"positive", "negative", "neutral"} and rated.summary.positive.between(0, 1).all()


def test_korean_discovery_names_topics_with_korean_words(korean_ratings):
    from topicsent.topics import discover_topics

    train, _ = korean_ratings
    taxonomy = discover_topics(list(train[:400]), language="ko", min_topic_size=10).taxonomy
    keywords = [w for t in taxonomy.topics for w in t.keywords[:5]]
    assert keywords and np.mean([bool(HANGUL.search(w)) for w in keywords]) > 0.8


@pytest.mark.slow
def test_korean_topics_sentiment_and_drivers_on_20k_movie_reviews():
    from topicsent.topics import analyze_topics

    reviews = load_dataset("nsmc").train.sample(20_000, seed=5)
    analysis = analyze_topics(reviews, seed=0)
    taxonomy = analysis.discovery.taxonomy
    keywords = [w for t in taxonomy.topics for w in t.keywords[:5]]
    assert len(taxonomy.topics) >= 5 and np.mean([bool(HANGUL.search(w)) for w in keywords]) > 0.8
    drivers = analysis.drivers
    significant = drivers[drivers.significant]
    assert len(significant) >= 3 and ((significant.polarity == "positive") == (significant.effect > 0)).mean() >= 0.9
