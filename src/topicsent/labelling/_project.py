"""A labelling project: a taxonomy (or a rating scale), reviews, and the labels people
give them, kept in one SQLite file (``project.sqlite``) in the project's folder.

Every label is committed (WAL journal, ``synchronous=FULL``) before :meth:`save_label`
returns, so a page that moves on only after the answer loses nothing if the server
dies. Each review's label has a version: a save names the version it corrects, and a
save based on an older version is refused (:class:`~topicsent.errors.EditConflictError`,
HTTP 409), so two tabs never silently overwrite each other. Every accepted write is
also appended to ``label_log`` with the model's answer at the time (for preference pairs).

The queue asks the reviews in the order the active-learning strategy planned when the
model last changed (:class:`~topicsent.labelling.QueryStrategy`: the ``priority`` of
each review), then the rest most uncertain first; in a seeded random order while there
is no model. Every fifth label is taken from a random held-out slice instead, which the
learning curve is measured on.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from topicsent.data import AspectLabel, LabelSpace, Review, ReviewSet, label_problem
from topicsent.errors import EditConflictError, InputDataError, InvalidParameterError, UnknownNameError
from topicsent.methods import review_confidence
from topicsent.schema import ReviewAnalysis, Task

PROJECT_FILE = "project.sqlite"
MODEL_DIR = "model"
#: One label in this many is taken from the random held-out slice (and one review in
#: this many is put in that slice when the project is made).
HELD_OUT_EVERY = 5
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
    id TEXT PRIMARY KEY, position INTEGER NOT NULL, text TEXT NOT NULL, language TEXT NOT NULL,
    rank INTEGER NOT NULL, held_out INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    review_id TEXT PRIMARY KEY REFERENCES reviews(id), aspects TEXT NOT NULL, rating INTEGER,
    version INTEGER NOT NULL, annotator TEXT, saved TEXT NOT NULL, source TEXT NOT NULL, first_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS label_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, review_id TEXT NOT NULL, aspects TEXT NOT NULL, rating INTEGER,
    version INTEGER NOT NULL, annotator TEXT, saved TEXT NOT NULL, source TEXT NOT NULL, model_answer TEXT
);
CREATE TABLE IF NOT EXISTS predictions (
    review_id TEXT PRIMARY KEY REFERENCES reviews(id), answer TEXT NOT NULL, uncertainty REAL NOT NULL, model TEXT,
    priority INTEGER
);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY AUTOINCREMENT, trained TEXT NOT NULL, method TEXT NOT NULL, labels INTEGER NOT NULL,
    held_out INTEGER NOT NULL, accuracy REAL, curve TEXT NOT NULL, note TEXT
);
"""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _dump(aspects: Sequence[dict[str, str]]) -> str:
    return json.dumps([{"aspect": a["aspect"], "polarity": a["polarity"]} for a in aspects], ensure_ascii=False)


class LabelProject:
    """An existing project in ``folder`` (see :meth:`create` for a new one).

    Raises
    ------
    UnknownNameError
        ``folder`` holds no project.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / PROJECT_FILE
        if not self.path.is_file():
            raise UnknownNameError(f"no labelling project in {self.folder} (no {PROJECT_FILE}); create one first")
        meta = dict(self._read("SELECT key, value FROM meta"))
        self.name: str = meta["name"]
        self.task = Task(meta["task"])
        self.space = LabelSpace.from_dict(json.loads(meta["space"]))
        self.method: str = meta["method"]

    # ----- making one ----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        folder: str | Path,
        reviews: Sequence[Review],
        *,
        categories: Sequence[str] | None = None,
        rating_scale: tuple[int, int] | None = None,
        method: str = "tfidf-lr",
        seed: int = 0,
    ) -> LabelProject:
        """Make a project in ``folder`` (its name is the folder's name) from unlabelled
        reviews and either a taxonomy (``categories``: aspect polarities are labelled) or
        a ``rating_scale`` (one rating per review is labelled).

        Raises
        ------
        InvalidParameterError
            A bad name, both or neither of taxonomy and scale, an empty or repeated
            category, a scale that is not low < high, or a folder that already holds a project.
        InputDataError
            No review with text, or a repeated review id.
        """
        folder = Path(folder)
        check_name(folder.name)
        space, task = _label_space(categories, rating_scale)
        usable = [r for r in reviews if r.analysable]
        if not usable:
            raise InputDataError("no review with text to label")
        seen: set[str] = set()
        for review in usable:
            if review.id in seen:
                raise InputDataError(f"review id {review.id!r} appears twice; ids must be unique")
            seen.add(review.id)
        if (folder / PROJECT_FILE).exists():
            raise InvalidParameterError(f"a project named {folder.name!r} exists already")
        folder.mkdir(parents=True, exist_ok=True)
        order = list(range(len(usable)))
        random.Random(seed).shuffle(order)
        rows = [
            (r.id, position, r.text, r.language, order[position], int(order[position] % HELD_OUT_EVERY == 0))
            for position, r in enumerate(usable)
        ]
        meta = {"name": folder.name, "task": task.value, "space": json.dumps(space.to_dict()), "method": method,
                "created": now(), "format": "1"}  # fmt: skip
        db = _open(folder / PROJECT_FILE)
        try:
            with db:
                db.executescript(_SCHEMA)
                db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
                db.executemany("INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?)", rows)
        finally:
            db.close()
        return cls(folder)

    # ----- reading -------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = _open(self.path)
        try:
            yield db
        finally:
            db.close()

    def _read(self, query: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._connect() as db:
            return db.execute(query, params).fetchall()

    def counts(self) -> dict[str, int]:
        """Reviews, labelled reviews, and labelled reviews of the held-out slice."""
        [(reviews, labelled, held_out)] = self._read(
            "SELECT (SELECT COUNT(*) FROM reviews), COUNT(l.review_id), COALESCE(SUM(r.held_out), 0) "
            "FROM labels l JOIN reviews r ON r.id = l.review_id"
        )
        return {"reviews": reviews, "labelled": labelled, "held_out": held_out}

    def summary(self) -> dict[str, Any]:
        """Name, task, label space, counts, and the models trained so far with their curves."""
        models = [
            {"id": m[0], "trained": m[1], "method": m[2], "labels": m[3], "held_out": m[4], "accuracy": m[5],
             "curve": json.loads(m[6]), "note": m[7]}
            for m in self._read("SELECT * FROM models ORDER BY id")
        ]  # fmt: skip
        return {"name": self.name, "task": self.task.value, "method": self.method, **self.space.to_dict(),
                **self.counts(), "models": models}  # fmt: skip

    def item(self, review_id: str) -> dict[str, Any]:
        """One review to label: its text, its current label (with the version a save must
        name; 0 when unlabelled) and the model's answer, if there is a model.

        Raises
        ------
        UnknownNameError
            ``review_id`` is not a review of this project.
        """
        rows = self._read(
            "SELECT r.id, r.text, r.language, r.held_out, l.aspects, l.rating, l.version, l.annotator, l.saved, "
            "p.answer, p.uncertainty, p.model FROM reviews r LEFT JOIN labels l ON l.review_id = r.id "
            "LEFT JOIN predictions p ON p.review_id = r.id WHERE r.id = ?",
            (review_id,),
        )
        if not rows:
            raise UnknownNameError(f"project {self.name!r} has no review with id {review_id!r}")
        (rid, text, language, held_out, aspects, rating, version, annotator, saved, answer, unsure, model) = rows[0]
        label = None
        if version is not None:
            label = {"aspects": json.loads(aspects), "rating": rating, "annotator": annotator, "saved": saved}
        model_answer = None if answer is None else json.loads(answer) | {"uncertainty": unsure, "model": model}
        return {"id": rid, "text": text, "language": language, "held_out": bool(held_out), "version": version or 0,
                "label": label, "model_answer": model_answer}  # fmt: skip

    def next_item(self) -> dict[str, Any] | None:
        """The next review to label (None when every review has a label): from the
        held-out slice while fewer than one label in :data:`HELD_OUT_EVERY` is from it
        (in random order), else the unlabelled review the model is least sure of
        (random order while there is no model)."""
        counts = self.counts()
        want_held_out = counts["held_out"] * HELD_OUT_EVERY <= counts["labelled"]
        query = (
            "SELECT r.id FROM reviews r LEFT JOIN predictions p ON p.review_id = r.id "
            "WHERE r.id NOT IN (SELECT review_id FROM labels) AND r.held_out = ? "
            "ORDER BY CASE WHEN r.held_out = 1 THEN 0 ELSE COALESCE(p.priority, 1e18) END, "
            "CASE WHEN r.held_out = 1 THEN 0 ELSE -COALESCE(p.uncertainty, 0) END, r.rank LIMIT 1"
        )
        for held_out in (want_held_out, not want_held_out):
            if rows := self._read(query, (int(held_out),)):
                return self.item(rows[0][0])
        return None

    def labelled(self, *, held_out: bool | None = None) -> ReviewSet:
        """The labelled reviews (only the held-out slice, or only the rest, or all), in
        the order they were first labelled, as a review set of this project's task."""
        where = "" if held_out is None else f"WHERE r.held_out = {int(held_out)}"
        rows = self._read(
            "SELECT r.id, r.text, r.language, l.aspects, l.rating FROM labels l JOIN reviews r ON r.id = l.review_id "
            f"{where} ORDER BY l.first_seq"
        )
        reviews = [
            Review(rid, text, language=language, rating=rating,
                   aspects=tuple(AspectLabel(a["aspect"], polarity=a["polarity"]) for a in json.loads(aspects)))
            for rid, text, language, aspects, rating in rows
        ]  # fmt: skip
        language = max(("en", "ko"), key=[r.language for r in reviews].count) if reviews else "en"
        return ReviewSet(tuple(reviews), label_space=self.space, task=self.task, name=f"project {self.name}", language=language)

    def reviews(self) -> list[Review]:
        """Every review of the project, without labels, in upload order."""
        rows = self._read("SELECT id, text, language FROM reviews ORDER BY position")
        return [Review(rid, text, language=language) for rid, text, language in rows]

    def export_rows(self) -> Iterator[dict[str, Any]]:
        """One row per labelled review, readable by ``topicsent train FILE --id-col id
        --aspects-col aspects`` (or ``--rating-col rating``), with who labelled it when."""
        rows = self._read(
            "SELECT r.id, r.text, l.aspects, l.rating, l.annotator, l.saved, r.held_out FROM labels l "
            "JOIN reviews r ON r.id = l.review_id ORDER BY l.first_seq"
        )
        for rid, text, aspects, rating, annotator, saved, held_out in rows:
            labels = {"rating": rating} if self.task is Task.RATING else {"aspects": json.loads(aspects)}
            yield {"id": rid, "text": text, **labels, "annotator": annotator, "labelled_at": saved,
                   "held_out": bool(held_out)}  # fmt: skip

    def preference_pairs(self) -> Iterator[dict[str, Any]]:
        """One pair per correction: a review whose latest label differs from the model's
        answer when it was labelled. ``chosen`` is the label, ``rejected`` the model's
        answer (both as JSON text of ``{"aspects": [...]}`` or ``{"rating": n}``), the
        data a preference-tuning step (DPO) learns from."""
        rows = self._read(
            "SELECT g.review_id, r.text, g.aspects, g.rating, g.model_answer, g.saved FROM label_log g "
            "JOIN reviews r ON r.id = g.review_id JOIN labels l ON l.review_id = g.review_id AND l.version = g.version "
            "WHERE g.model_answer IS NOT NULL ORDER BY g.seq"
        )
        for rid, text, aspects, rating, model_answer, saved in rows:
            chosen = self._answer_text(json.loads(aspects), rating)
            answer = json.loads(model_answer)
            rejected = self._answer_text(answer.get("aspects", []), answer.get("rating"))
            if chosen != rejected:
                yield {"review_id": rid, "prompt": text, "chosen": chosen, "rejected": rejected, "labelled_at": saved}

    def _answer_text(self, aspects: list[dict], rating: int | float | None) -> str:
        if self.task is Task.RATING:
            return json.dumps({"rating": None if rating is None else round(rating)})
        ordered = sorted(({"aspect": a["aspect"], "polarity": a["polarity"]} for a in aspects), key=lambda a: a["aspect"])
        return json.dumps({"aspects": ordered}, ensure_ascii=False)

    # ----- writing -------------------------------------------------------------------

    def label_problem(self, review_id: str, aspects: Sequence[dict[str, str]], rating: int | None) -> str | None:
        """Why this label cannot be saved (a category outside the taxonomy, a polarity or
        rating outside the project's, a repeated category, a missing rating); None if it can."""
        if self.task is Task.RATING:
            if aspects:
                return "this project labels ratings, not aspects"
            if rating is None:
                return f"a rating is needed (on the scale {self.space.rating_scale[0]}-{self.space.rating_scale[1]})"
        elif rating is not None:
            return "this project labels aspect polarities, not ratings"
        names = [a["aspect"] for a in aspects]
        if repeated := sorted({n for n in names if names.count(n) > 1}):
            return f"category {repeated[0]!r} is labelled twice"
        labels = tuple(AspectLabel(a["aspect"], polarity=a["polarity"]) for a in aspects)
        return label_problem(Review(review_id, "", rating=rating, aspects=labels), self.space, self.task)

    def save_label(
        self,
        review_id: str,
        *,
        aspects: Sequence[dict[str, str]] = (),
        rating: int | None = None,
        version: int | None,
        annotator: str | None = None,
        source: str = "page",
    ) -> dict[str, Any]:
        """Store a label, durably, before returning.

        Parameters
        ----------
        aspects : list of {"aspect": category, "polarity": polarity}
            The categories the review mentions (ACSA projects); the others are absent.
        rating : int, optional
            The rating (rating projects).
        version : int or None
            The label version the caller started from (0: unlabelled). None skips the
            check (an import: the last write wins, and both are in the log).
        annotator : str, optional
        source : str
            ``page``, ``label-studio``, ...

        Returns
        -------
        dict
            ``{"id", "version", "saved"}``: the new version.

        Raises
        ------
        UnknownNameError
            No such review in the project.
        InputDataError
            A label outside the taxonomy, polarities or scale.
        EditConflictError
            The review was saved since ``version`` (another tab, another annotator).
        """
        return self.save_labels([(review_id, list(aspects), rating, version, annotator)], source=source)[0]

    def save_labels(self, labels: Sequence[tuple], *, source: str) -> list[dict[str, Any]]:
        """Several labels ``(review_id, aspects, rating, version, annotator)`` in one
        transaction: all are checked first, and either all are stored or none."""
        for review_id, aspects, rating, _, _ in labels:
            if problem := self.label_problem(review_id, aspects, rating):
                raise InputDataError(f"review {review_id!r}: {problem}")
        saved, results = now(), []
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # the version check and the write are one step, across threads and processes
            try:
                for review_id, aspects, rating, version, annotator in labels:
                    results.append(self._write(db, review_id, aspects, rating, version, annotator, source, saved))
                db.commit()
            except BaseException:
                db.rollback()
                raise
        return results

    def _write(self, db, review_id, aspects, rating, version, annotator, source, saved) -> dict[str, Any]:
        if db.execute("SELECT 1 FROM reviews WHERE id = ?", (review_id,)).fetchone() is None:
            raise UnknownNameError(f"project {self.name!r} has no review with id {review_id!r}")
        current = db.execute("SELECT version, first_seq, annotator, saved FROM labels WHERE review_id = ?", (review_id,))
        current = current.fetchone()
        now_version = current[0] if current else 0
        if version is not None and version != now_version:
            by = f" by {current[2]}" if current and current[2] else ""
            raise EditConflictError(
                f"review {review_id!r} was saved{by} at {current[3] if current else '?'} (version {now_version}) after "
                f"you opened it (version {version}); reload it to see that label, then save yours again"
            )
        model_answer = db.execute("SELECT answer FROM predictions WHERE review_id = ?", (review_id,)).fetchone()
        log = db.execute(
            "INSERT INTO label_log (review_id, aspects, rating, version, annotator, saved, source, model_answer) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (review_id, _dump(aspects), rating, now_version + 1, annotator, saved, source,
             model_answer[0] if model_answer else None),
        )  # fmt: skip
        first_seq = current[1] if current else log.lastrowid
        db.execute(
            "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (review_id, _dump(aspects), rating, now_version + 1, annotator, saved, source, first_seq),
        )
        return {"id": review_id, "version": now_version + 1, "saved": saved}

    def queue_pool(self) -> list[str]:
        """Ids of the unlabelled reviews outside the held-out slice (those the strategy
        plans the queue over), in the project's seeded random order."""
        return [row[0] for row in self._read(
            "SELECT id FROM reviews WHERE held_out = 0 AND id NOT IN (SELECT review_id FROM labels) ORDER BY rank"
        )]  # fmt: skip

    def set_predictions(
        self,
        analyses: Sequence[ReviewAnalysis],
        model: str,
        *,
        uncertainty: Sequence[float],
        priority: Mapping[str, int],
    ) -> None:
        """Keep a model's answers (those within the project's taxonomy) to pre-fill the
        page, with each review's uncertainty (shown, and the queue's order after the
        plan) and the strategy's plan (``priority``: review id to its place in the
        queue; reviews not in it come after, most uncertain first)."""
        categories = set(self.space.categories or ())
        rows = []
        for analysis, unsure in zip(analyses, uncertainty, strict=True):
            answer = {
                "aspects": [{"aspect": a.aspect, "polarity": a.polarity, "confidence": a.confidence}
                            for a in analysis.aspects if a.aspect in categories],
                "rating": analysis.overall.rating,
                "confidence": review_confidence(analysis) if analysis.status == "ok" else None,
            }  # fmt: skip
            if self.task is Task.RATING and answer["rating"] is not None:
                low, high = self.space.rating_scale
                answer["rating"] = min(max(round(answer["rating"]), low), high)
            rid = analysis.review_id
            rows.append((rid, json.dumps(answer, ensure_ascii=False), float(unsure), model, priority.get(rid)))
        with self._connect() as db, db:
            db.execute("DELETE FROM predictions")
            db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?)", rows)

    def record_model(self, *, method: str, labels: int, held_out: int, accuracy: float | None, curve, note: str | None):
        with self._connect() as db, db:
            db.execute(
                "INSERT INTO models (trained, method, labels, held_out, accuracy, curve, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now(), method, labels, held_out, accuracy, json.dumps(curve), note),
            )


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a committed label survives a power cut, not only a killed process
    return db


def _label_space(categories: Sequence[str] | None, rating_scale: tuple[int, int] | None) -> tuple[LabelSpace, Task]:
    if (categories is None) == (rating_scale is None):
        raise InvalidParameterError("give a project either a taxonomy (categories) or a rating scale, not both or neither")
    if rating_scale is not None:
        low, high = rating_scale
        if not (isinstance(low, int) and isinstance(high, int) and low < high):
            raise InvalidParameterError(f"rating scale {low}-{high}: expected two whole numbers, low < high (e.g. 1-5)")
        return LabelSpace(rating_scale=(low, high)), Task.RATING
    names = [c.strip() for c in categories]
    if not names or not all(names):
        raise InvalidParameterError("the taxonomy needs at least one category, and no empty name")
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        raise InvalidParameterError(f"category {repeated[0]!r} is given twice")
    return LabelSpace(categories=tuple(names)), Task.ACSA


def check_name(name: str) -> str:
    """``name`` if it can name a project (so it also never leads out of the projects folder).

    Raises
    ------
    InvalidParameterError
        Anything but 1-64 letters, digits, '-' or '_', starting with a letter or digit.
    """
    if not NAME_PATTERN.match(name):
        raise InvalidParameterError(
            f"project name {name!r}: use 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return name


def project_folder(root: str | Path, name: str) -> Path:
    """The folder of project ``name`` under ``root``; the name is checked, so it can
    never point outside ``root``.

    Raises
    ------
    UnknownNameError
        A name that cannot be a project's.
    """
    if not NAME_PATTERN.match(name):
        raise UnknownNameError(f"no labelling project {name!r}")
    return Path(root) / name


def list_projects(root: str | Path) -> list[str]:
    """Names of the projects under ``root``."""
    root = Path(root)
    return sorted(p.parent.name for p in root.glob(f"*/{PROJECT_FILE}")) if root.is_dir() else []
