"""M-ABSA loaders against the counts its data README publishes, and the skipped-line report."""

import re
from collections import Counter

import pytest

from topicsent.data import DATASETS, data_dir, load_dataset
from topicsent.data._mabsa import category_aspects, read_mabsa_file, term_aspects
from topicsent.eval import run_evaluation

SPLIT_OF_FILE = {"train": "train", "dev": "val", "test": "test"}


def _readme_rows() -> list[dict]:
    """The per-file table of ``m_absa/README.md``: lang, domain, split and its counts."""
    rows = []
    for line in (data_dir() / "m_absa" / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 10 or cells[0] not in ("ko", "en"):
            continue
        language, domain, split, sentences, unparseable, triplets, null, verbatim, categories, polarities = cells
        rows.append({
            "language": language, "domain": domain, "split": split, "sentences": int(sentences),
            "unparseable": int(unparseable), "triplets": int(triplets), "null": int(null), "verbatim": int(verbatim),
            "categories": int(categories),
            "polarities": {name: int(n) for name, n in (part.split() for part in polarities.split(" / "))},
        })  # fmt: skip
    return rows


README_ROWS = _readme_rows()


def _parsed(row: dict):
    path = data_dir() / "m_absa" / row["language"] / row["domain"] / f"{row['split']}.txt"
    return read_mabsa_file(path, f"m_absa/{row['language']}/{row['domain']}/{row['split']}.txt")


def test_the_readme_table_has_every_file():
    assert len(README_ROWS) == 21  # 4 Korean domains + 3 English, three splits each


@pytest.mark.parametrize("row", README_ROWS, ids=lambda r: f"{r['language']}-{r['domain']}-{r['split']}")
def test_each_file_matches_the_readme_counts(row):
    parsed = _parsed(row)
    triplets = [t for s in parsed.sentences for t in s.triplets]
    assert len(parsed.sentences) == row["sentences"]
    assert len(parsed.unparseable) == row["unparseable"]
    assert len(triplets) == row["triplets"]
    assert sum(t.term is None for t in triplets) == row["null"]
    # the README counts a term as verbatim when `term in text`, which an empty term ('') also is
    assert sum(1 for s in parsed.sentences for t in s.triplets if t.term is not None and t.term in s.text) == row["verbatim"]
    assert len({t.category for t in triplets}) == row["categories"]
    assert Counter(t.polarity for t in triplets) == row["polarities"]
    # ATSA keeps every term found in the text (one aspect per distinct term) and counts the rest, empty ones too
    empty = sum(t.term == "" for t in triplets)
    assert empty == (2 if (row["language"], row["domain"], row["split"]) == ("ko", "phone", "dev") else 0)
    missing = sum(term_aspects(s)[1] for s in parsed.sentences)
    assert missing == row["triplets"] - row["null"] - row["verbatim"] + empty


@pytest.mark.parametrize("row", README_ROWS, ids=lambda r: f"{r['language']}-{r['domain']}-{r['split']}")
def test_every_view_reports_the_unparseable_lines_of_its_files(row):
    file = f"m_absa/{row['language']}/{row['domain']}/{row['split']}.txt"
    for view in ("acsa", "acsa-full", "atsa"):
        splits = load_dataset(f"mabsa-{row['language']}-{row['domain']}-{view}")
        part = getattr(splits, {"train": "train", "dev": "validation", "test": "test"}[row["split"]])
        notes = [note for note in part.notes if note.startswith(f"{file}:")]
        assert len(notes) <= 1  # one line per file
        found = re.search(r"(\d+) unparseable lines? skipped", notes[0]) if notes else None
        assert (int(found.group(1)) if found else 0) == row["unparseable"]
        terms_lost = re.search(r"(\d+) of \d+ terms not found", notes[0]) if notes else None
        empty = 2 if (row["language"], row["domain"], row["split"]) == ("ko", "phone", "dev") else 0  # see above
        expected = row["triplets"] - row["null"] - row["verbatim"] + empty if view == "atsa" else 0
        assert (int(terms_lost.group(1)) if terms_lost else 0) == expected


def test_korean_restaurant_names_the_skipped_lines():
    splits = load_dataset("mabsa-ko-restaurant-acsa")
    assert splits.train.notes == ("m_absa/ko/restaurant/train.txt: 1 unparseable line skipped (959)",)
    assert splits.test.notes == ("m_absa/ko/restaurant/test.txt: 3 unparseable lines skipped (8, 82, 254)",)
    assert splits.validation.notes == ()


def test_bad_lines_are_counted_not_raised(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(
        "좋아요####[['음식', 'food quality', 'positive']]\n"
        "no separator at all\n"
        "Ray 's 최고####[['Ray 's', 'restaurant general', 'positive']]\n"  # an unescaped quote
        "별로####[['음식', 'food quality', 'great']]\n"  # no such polarity
        "\n"
        "짧다####[['음식', 'food quality']]\n"  # not a triplet
        "####[['음식', 'food quality', 'positive']]\n"  # no text
        "맛없음####[]\n",
        encoding="utf-8",
    )
    parsed = read_mabsa_file(path, "train.txt")
    assert [s.line for s in parsed.sentences] == [1, 8]
    assert parsed.unparseable == (2, 3, 4, 6, 7)


def test_several_opinions_of_one_aspect_merge_or_conflict(tmp_path):
    path = tmp_path / "test.txt"
    path.write_text(
        "음식은 맛있는데 비싸고 음식 양은 적다####[['음식', 'food quality', 'positive'], "
        "['NULL', 'food prices', 'negative'], ['음식', 'food quality', 'positive'], "
        "['음식 양', 'food style_options', 'negative'], ['없는 말', 'service general', 'neutral']]\n",
        encoding="utf-8",
    )
    (sentence,) = read_mabsa_file(path, "test.txt").sentences
    full = {a.name: a.polarity for a in category_aspects(sentence, "category")}
    assert full == {
        "food quality": "positive", "food prices": "negative", "food style_options": "negative", "service general": "neutral",
    }  # fmt: skip
    entities = {a.name: a.polarity for a in category_aspects(sentence, "entity")}
    assert entities == {"food": "conflict", "service": "neutral"}
    terms, missing = term_aspects(sentence)
    assert [(a.name, a.polarity, sentence.text[a.start : a.end]) for a in terms] == [
        ("음식", "positive", "음식"), ("음식 양", "negative", "음식 양"),
    ]  # fmt: skip
    assert missing == 1  # '없는 말' is not in the text


def test_korean_views_taxonomies_and_conflicts():
    entity, full, terms = (load_dataset(f"mabsa-ko-restaurant-{view}") for view in ("acsa", "acsa-full", "atsa"))
    assert entity.train.label_space.categories == ("ambience", "drinks", "food", "location", "restaurant", "service")
    assert len(full.train.label_space.categories) == 13 and "food quality" in full.train.label_space.categories
    assert entity.train.language == "ko" and entity.train.label_space.polarities[-1] == "conflict"
    # sentences with different polarities for one entity: conflict, as SemEval
    assert entity.train.polarity_counts()["conflict"] > full.train.polarity_counts()["conflict"] > 0
    # each sentence has at most one aspect per category and as many entities as distinct entities
    assert all(len({a.name for a in r.aspects}) == len(r.aspects) for r in full.train)
    assert all(r.text[a.start : a.end] == a.name for part in (terms.train, terms.test) for r in part for a in r.aspects)
    # the phone domain's Entity#Attribute categories: entity before '#'
    phone = load_dataset("mabsa-ko-phone-acsa").train.label_space.categories
    assert "Screen" in phone and not any("#" in c for c in phone)


def test_english_parallel_sets_share_the_korean_taxonomy():
    for domain in ("food", "hotel", "phone"):
        korean, english = load_dataset(f"mabsa-ko-{domain}-acsa-full"), load_dataset(f"mabsa-en-{domain}-acsa-full")
        assert english.train.language == "en"
        assert english.train.label_space.categories == korean.train.label_space.categories
    assert "mabsa-en-restaurant-acsa" not in DATASETS  # the English restaurant file is not in the shared copy


def test_an_evaluation_run_records_the_notes(tmp_path):
    run = run_evaluation(["mabsa-ko-food-acsa"], ["majority"], tune=False, calibration_sample=0)
    assert run["run"]["notes"]["mabsa-ko-food-acsa"] == [
        "m_absa/ko/food/train.txt: 4 unparseable lines skipped (72, 187, 291, 576)",
        "m_absa/ko/food/dev.txt: 1 unparseable line skipped (48)",
    ]
    assert run["results"][0]["n_test"] == 522


def test_each_evaluated_method_analyses_korean_text_afresh():
    """The morpheme cache is emptied per method: another method's analyses of the test
    texts would make this one look faster than it is on new reviews."""
    from topicsent.eval import evaluate_method
    from topicsent.text import korean_morphemes

    splits = load_dataset("mabsa-ko-food-acsa").limited(60, seed=0)
    for review in splits.test:
        korean_morphemes(review.text)
    evaluate_method("mabsa-ko-food-acsa", splits, "majority", tune=False, calibration_sample=0)
    assert korean_morphemes.cache_info().currsize == 0
