"""Loaders for the public review datasets in the shared data folder.

Each loader returns :class:`Splits` with the official train/validation/test split;
where a dataset has none, a fixed seeded split is made here so every run, method and
commit scores on the same reviews.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache, partial
from pathlib import Path

from topicsent.data._mabsa import MABSA_DOMAINS, MABSA_FILES, MABSA_VIEWS, mabsa_splits, read_mabsa_file
from topicsent.data._reviews import AspectLabel, LabelSpace, OpinionLabel, Review, ReviewSet, Splits
from topicsent.errors import InputDataError, UnknownNameError
from topicsent.schema import Task

DATA_DIR_ENV = "TOPICSENT_DATA_DIR"
SPLIT_SEED = 13  # fixed forever: changing it changes every reported number
MAMS_CATEGORIES = ("ambience", "food", "menu", "miscellaneous", "place", "price", "service", "staff")
SEMEVAL_CATEGORIES = ("ambience", "anecdotes/miscellaneous", "food", "price", "service")


def data_dir() -> Path:
    """Where the shared datasets live: ``$TOPICSENT_DATA_DIR``, else ``shared/data``
    beside the working directory or beside this checkout."""
    if env := os.environ.get(DATA_DIR_ENV):
        candidates = [Path(env)]
    else:
        repo = Path(__file__).resolve().parents[3]
        candidates = [Path.cwd().parent / "shared/data", Path.cwd() / "shared/data", repo.parent / "shared/data"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise InputDataError(f"dataset folder not found (tried {tried}); set {DATA_DIR_ENV} to the folder holding mams/, nsmc/, ...")


def sample_path(name: str) -> Path:
    """A small public review file bundled with the package (``data/samples``, listed in its
    README): ``mams_acsa_train.jsonl.gz``, ``mams_acsa_test.jsonl.gz``, ``nsmc_train.csv.gz``,
    ``nsmc_test.csv.gz``. Works without the shared data folder.

    Raises
    ------
    InputDataError
        No bundled file of that name.
    """
    from importlib.resources import files

    path = Path(str(files("topicsent.data") / "samples" / name))
    if not path.is_file():
        known = sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".gz"))
        raise InputDataError(f"no bundled sample {name!r}; samples: {', '.join(known)}")
    return path


@dataclass(frozen=True)
class DatasetInfo:
    """A built-in dataset: ``load`` reads its splits; ``sizes`` are the reviews its train,
    validation and test splits hold, so ``topicsent datasets`` lists them without
    loading 700k reviews (a test loads every built-in dataset and checks them; a
    plug-in's dataset may leave them out: the listing then shows ``-``)."""

    name: str
    task: Task
    language: str
    description: str
    licence: str
    load: Callable[[], Splits]
    sizes: tuple[int, int, int] | None = None


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise InputDataError(f"{path}: file not found; is {DATA_DIR_ENV} pointing at the shared data folder?")
    return path


def _read_jsonl(path: Path) -> list[dict]:
    with _require_file(path).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _acsa_review(row: dict, language: str = "en") -> Review:
    aspects = tuple(AspectLabel(a["category"], "category", a["polarity"]) for a in row["aspect_categories"])
    return Review(id=str(row["sentence_id"]), text=row["text"], language=language, aspects=aspects)


def _atsa_review(row: dict, language: str = "en") -> Review:
    aspects = tuple(AspectLabel(a["term"], "term", a["polarity"], a["from"], a["to"]) for a in row["aspect_terms"])
    return Review(id=str(row["sentence_id"]), text=row["text"], language=language, aspects=aspects)


def _review_set(reviews: list[Review], name: str, task: Task, space: LabelSpace, language: str = "en") -> ReviewSet:
    return ReviewSet(tuple(reviews), label_space=space, task=task, name=name, language=language)


def _seeded_holdout(reviews: list[Review], fraction: float) -> tuple[list[Review], list[Review]]:
    """Split off a fixed seeded ``fraction`` (order kept) for validation."""
    held = set(random.Random(SPLIT_SEED).sample(range(len(reviews)), round(len(reviews) * fraction)))
    kept = [r for i, r in enumerate(reviews) if i not in held]
    return kept, [r for i, r in enumerate(reviews) if i in held]


def _without_nested_terms(review: Review) -> Review:
    """The review with a term dropped when it overlaps a longer one: 8 MAMS training
    sentences mark both (``'beer s'`` inside ``'beer selection'``, ``'food'`` inside
    ``'seafood'``), which no token tagger can learn; the longer term is kept."""
    kept: list[AspectLabel] = []
    for aspect in sorted(review.aspects, key=lambda a: (a.start is None, -((a.end or 0) - (a.start or 0)))):
        overlaps = any(a.start is not None and aspect.start is not None and aspect.start < a.end and a.start < aspect.end
                       for a in kept)  # fmt: skip
        if not overlaps:
            kept.append(aspect)
    return review if len(kept) == len(review.aspects) else replace(review, aspects=tuple(a for a in review.aspects if a in kept))


def _load_mams(task: Task) -> Splits:
    folder = data_dir() / "mams" / task.value
    to_review = _acsa_review if task is Task.ACSA else lambda row: _without_nested_terms(_atsa_review(row))
    space = LabelSpace(categories=MAMS_CATEGORIES if task is Task.ACSA else None)
    parts = {
        split: _review_set(
            [r for r in map(to_review, _read_jsonl(folder / f"{split}.jsonl")) if r.aspects],
            f"mams-{task.value}/{split}", task, space,
        )
        for split in ("train", "val", "test")
    }  # fmt: skip
    return Splits(parts["train"], parts["val"], parts["test"])


def _load_semeval(task: Task) -> Splits:
    """SemEval-2014 restaurants: train v2 and test gold; validation is a seeded 10% of
    train. Sentences without aspects of the task are dropped (the standard protocol)."""
    folder = data_dir() / "semeval14_restaurants"
    to_review = _acsa_review if task is Task.ACSA else _atsa_review
    space = LabelSpace(
        polarities=("positive", "negative", "neutral", "conflict"),
        categories=SEMEVAL_CATEGORIES if task is Task.ACSA else None,
    )

    def reviews(split: str) -> list[Review]:
        return [r for r in map(to_review, _read_jsonl(folder / f"{split}.jsonl")) if r.aspects]

    train, validation = _seeded_holdout(reviews("train"), 0.1)
    name = f"semeval14-{task.value}"
    return Splits(
        _review_set(train, f"{name}/train", task, space),
        _review_set(validation, f"{name}/val", task, space),
        _review_set(reviews("test"), f"{name}/test", task, space),
    )


ASTE_POLARITY = {"POS": "positive", "NEG": "negative", "NEU": "neutral"}


def _aste_review(line: str, review_id: str, source: str) -> Review:
    """One line of ASTE-Data-V2: ``tokens####[([aspect indices], [opinion indices], 'POS'), ...]``.
    The text is the tokens joined by single spaces (as given), so indices become exact
    character offsets. An aspect with several opinions is one term with several
    opinions; its polarity is theirs when they agree, else ``conflict``. (Two 14lap
    sentences, one in train and one in dev, mark overlapping aspects: the longer is kept.)"""
    sentence, _, literal = line.rstrip("\n").partition("####")
    tokens = sentence.split(" ")
    starts = [sum(len(t) + 1 for t in tokens[:i]) for i in range(len(tokens))]
    try:
        triplets = ast.literal_eval(literal)
        spans = [((starts[a[0]], starts[a[-1]] + len(tokens[a[-1]])), (starts[o[0]], starts[o[-1]] + len(tokens[o[-1]])),
                  ASTE_POLARITY[p]) for a, o, p in triplets]  # fmt: skip
    except (ValueError, SyntaxError, IndexError, KeyError, TypeError) as error:
        raise InputDataError(f"{source}: line {review_id}: not an ASTE triplet line ({type(error).__name__})") from None
    by_aspect: dict[tuple[int, int], list[OpinionLabel]] = {}
    for aspect, opinion, polarity in spans:
        by_aspect.setdefault(aspect, []).append(OpinionLabel(*opinion, polarity))
    aspects = tuple(
        AspectLabel(sentence[start:end], "term", ops[0].polarity if len({o.polarity for o in ops}) == 1 else "conflict",
                    start, end, tuple(ops))
        for (start, end), ops in sorted(by_aspect.items())
    )  # fmt: skip
    return _without_nested_terms(Review(review_id, sentence, "en", aspects=aspects))


def _load_aste(name: str) -> Splits:
    """ASTE-Data-V2 (Xu et al. 2020) triplets, official train/dev/test; ids are
    ``split-line`` (line numbers from 1)."""
    folder = data_dir() / "aste" / name
    space = LabelSpace(polarities=("positive", "negative", "neutral", "conflict"))
    parts = {}
    for split, file_split in (("train", "train"), ("val", "dev"), ("test", "test")):
        path = _require_file(folder / f"{file_split}_triplets.txt")
        lines = path.read_text(encoding="utf-8").splitlines()
        reviews = [_aste_review(line, f"{split}-{number}", str(path)) for number, line in enumerate(lines, 1) if line.strip()]
        parts[split] = _review_set(reviews, f"aste-{name}/{split}", Task.ATSA, space)
    return Splits(parts["train"], parts["val"], parts["test"])


def _movie_bucket(movie_id: str) -> int:
    """A stable 0-99 bucket per movie, so all reviews of one movie share a split."""
    return int.from_bytes(hashlib.blake2b(f"{SPLIT_SEED}:{movie_id}".encode(), digest_size=4).digest()) % 100


@cache
def _nsmc_rows() -> tuple[tuple[str, str, int, str], ...]:
    import pandas as pd

    path = _require_file(data_dir() / "nsmc" / "nsmc_ratings.tsv.gz")
    frame = pd.read_csv(path, sep="\t", quoting=3, dtype={"review_id": str, "movie_id": str, "text": str})
    frame = frame[frame["text"].notna()]
    return tuple(zip(frame["review_id"], frame["movie_id"], frame["rating"].astype(int), frame["text"], strict=True))


def _load_nsmc(binary: bool) -> Splits:
    """NSMC 1-10 ratings split 80/10/10 by movie (no official split exists; splitting by
    movie keeps one movie's reviews out of both train and test). The binary view keeps
    ratings 1-4 (0, negative) and 9-10 (1, positive), as in the original NSMC files."""
    buckets: dict[str, list[Review]] = {"train": [], "val": [], "test": []}
    for review_id, movie_id, rating, text in _nsmc_rows():
        if binary:
            if 5 <= rating <= 8:
                continue
            rating = int(rating >= 9)
        bucket = _movie_bucket(movie_id)
        split = "train" if bucket < 80 else "val" if bucket < 90 else "test"
        buckets[split].append(Review(review_id, text, "ko", rating, meta={"movie_id": movie_id}))
    name = "nsmc-binary" if binary else "nsmc"
    space = LabelSpace(rating_scale=(0, 1) if binary else (1, 10))
    sets = {s: _review_set(rs, f"{name}/{s}", Task.RATING, space, "ko") for s, rs in buckets.items()}
    return Splits(sets["train"], sets["val"], sets["test"])


def _load_womens_clothing() -> Splits:
    """Women's clothing reviews, 1-5 stars; the text is the title and the review body
    (both carry the reviewer's verdict). Rows with neither are dropped. Fixed seeded,
    rating-stratified 80/10/10 split."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    path = _require_file(data_dir() / "womens_clothing" / "reviews.csv.gz")
    frame = pd.read_csv(path, dtype={"Title": str, "Review Text": str}, keep_default_na=False)
    reviews = [
        Review(str(row_id), text, "en", int(rating), meta={"clothing_id": str(cloth)})
        for row_id, cloth, rating, text in zip(
            frame["row_id"], frame["Clothing ID"], frame["Rating"],
            (". ".join(p.strip() for p in pair if p.strip()) for pair in zip(frame["Title"], frame["Review Text"], strict=True)),
            strict=True,
        )
        if text
    ]  # fmt: skip
    ratings = [r.rating for r in reviews]
    train, rest = train_test_split(reviews, test_size=0.2, random_state=SPLIT_SEED, stratify=ratings)
    validation, test = train_test_split(rest, test_size=0.5, random_state=SPLIT_SEED, stratify=[r.rating for r in rest])
    space = LabelSpace(rating_scale=(1, 5))
    return Splits(*(
        _review_set(part, f"womens-clothing/{split}", Task.RATING, space)
        for part, split in ((train, "train"), (validation, "val"), (test, "test"))
    ))  # fmt: skip


def _load_mabsa(language: str, domain: str, view: str) -> Splits:
    """M-ABSA, official train/dev/test files of one language and domain (see ``_mabsa``)."""
    folder = data_dir() / "m_absa"
    files = {
        split: read_mabsa_file(_require_file(folder / language / domain / file), f"m_absa/{language}/{domain}/{file}")
        for split, file in MABSA_FILES.items()
    }
    return mabsa_splits(files, view=view, language=language, name=_mabsa_name(language, domain, view))


def _mabsa_name(language: str, domain: str, view: str) -> str:
    return f"mabsa-{language}-{domain}-{view}"


_LANGUAGE_NAMES = {"ko": "Korean", "en": "English"}
#: An entity-attribute category of each domain, for the descriptions.
_MABSA_EXAMPLES = {"restaurant": ("food quality", "food"), "hotel": ("rooms comfort", "rooms"),
                   "food": ("food quality", "food"), "phone": ("Screen#Clarity", "Screen")}  # fmt: skip


def _mabsa_description(language: str, domain: str, view: str) -> str:
    category, entity = _MABSA_EXAMPLES[domain]
    aspects = {
        "acsa": f"categories at entity level ('{category}' -> '{entity}')",
        "acsa-full": f"entity-attribute categories ('{category}')",
        "atsa": "aspect terms found in the text, with spans",
    }[view]
    return f"M-ABSA {domain} ({_LANGUAGE_NAMES[language]}), {aspects}; 4 polarities incl. conflict"


#: Reviews per split (train, val, test): sentences with at least one aspect of the view.
_MABSA_SIZES = {
    ("ko", "restaurant", "acsa"): (1263, 316, 541), ("ko", "restaurant", "acsa-full"): (1263, 316, 541),
    ("ko", "restaurant", "atsa"): (941, 239, 398),
    ("ko", "hotel", "acsa"): (957, 188, 584), ("ko", "hotel", "acsa-full"): (957, 188, 584),
    ("ko", "hotel", "atsa"): (713, 141, 401),
    ("ko", "food", "acsa"): (887, 235, 522), ("ko", "food", "acsa-full"): (887, 235, 522),
    ("ko", "food", "atsa"): (311, 86, 236),
    ("ko", "phone", "acsa"): (1073, 256, 448), ("ko", "phone", "acsa-full"): (1073, 256, 448),
    ("ko", "phone", "atsa"): (1070, 255, 447),
    ("en", "food", "acsa"): (891, 236, 522), ("en", "food", "acsa-full"): (891, 236, 522),
    ("en", "food", "atsa"): (316, 87, 237),
    ("en", "hotel", "acsa"): (957, 188, 584), ("en", "hotel", "acsa-full"): (957, 188, 584),
    ("en", "hotel", "atsa"): (709, 141, 408),
    ("en", "phone", "acsa"): (1073, 256, 449), ("en", "phone", "acsa-full"): (1073, 256, 449),
    ("en", "phone", "atsa"): (1073, 256, 449),
}  # fmt: skip


def _mabsa_infos() -> list[DatasetInfo]:
    """One dataset per language x domain x view: Korean restaurant/hotel/food/phone and the
    parallel English food/hotel/phone, each as entity ACSA, full-category ACSA and ATSA."""
    return [
        DatasetInfo(
            _mabsa_name(language, domain, view), MABSA_VIEWS[view][0], language,
            _mabsa_description(language, domain, view),
            "Apache-2.0", partial(_load_mabsa, language, domain, view), _MABSA_SIZES[language, domain, view],
        )
        for language, domains in MABSA_DOMAINS.items()
        for domain in domains
        for view in MABSA_VIEWS
    ]  # fmt: skip


_SEMEVAL_LICENCE = "research use (SemEval-2014 organisers)"
DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "mams-acsa", Task.ACSA, "en", "MAMS restaurant sentences, 8 categories, >=2 aspects each",
            "Apache-2.0", lambda: _load_mams(Task.ACSA), (3149, 400, 400),
        ),
        DatasetInfo(
            "mams-atsa", Task.ATSA, "en", "MAMS restaurant sentences, aspect terms with spans",
            "Apache-2.0", lambda: _load_mams(Task.ATSA), (4297, 500, 500),
        ),
        DatasetInfo(
            "semeval14-acsa", Task.ACSA, "en", "SemEval-2014 restaurants, 5 categories, 4 polarities incl. conflict",
            _SEMEVAL_LICENCE, lambda: _load_semeval(Task.ACSA), (2737, 304, 800),
        ),
        DatasetInfo(
            "semeval14-atsa", Task.ATSA, "en", "SemEval-2014 restaurants, aspect terms with spans, 4 polarities",
            _SEMEVAL_LICENCE, lambda: _load_semeval(Task.ATSA), (1819, 202, 606),
        ),
        DatasetInfo(
            "aste-14res", Task.ATSA, "en",
            "ASTE-V2 SemEval-14 restaurants: (aspect term, opinion term, polarity) triplets; test overlaps SemEval-14 test",
            _SEMEVAL_LICENCE, lambda: _load_aste("14res"), (1266, 310, 492),
        ),
        DatasetInfo(
            "aste-14lap", Task.ATSA, "en", "ASTE-V2 SemEval-14 laptops: (aspect term, opinion term, polarity) triplets",
            _SEMEVAL_LICENCE, lambda: _load_aste("14lap"), (906, 219, 328),
        ),
        DatasetInfo(
            "nsmc", Task.RATING, "ko", "Naver movie reviews (Korean), 1-10 ratings, split by movie",
            "CC0-1.0", lambda: _load_nsmc(binary=False), (567_980, 71_963, 72_440),
        ),
        DatasetInfo(
            "nsmc-binary", Task.RATING, "ko", "NSMC binary view: 1-4 -> 0 (negative), 9-10 -> 1 (positive)",
            "CC0-1.0", lambda: _load_nsmc(binary=True), (398_737, 49_723, 51_249),
        ),
        DatasetInfo(
            "womens-clothing", Task.RATING, "en", "Women's e-commerce clothing reviews, 1-5 stars",
            "CC0-1.0", _load_womens_clothing, (18_113, 2_264, 2_265),
        ),
        *_mabsa_infos(),
    )
}  # fmt: skip


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


@cache
def load_dataset(name: str) -> Splits:
    """The train/validation/test splits of a built-in dataset, by name (see ``DATASETS``).

    Cached per process: loading NSMC takes a few seconds.
    """
    return dataset_info(name).load()
