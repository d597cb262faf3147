"""The persistent response cache and the call log, one SQLite file.

Responses are keyed by everything that can change them (backend, model, messages,
which embed the versioned prompt templates, schema and decoding parameters), so a
second identical run makes no backend call and gives identical output. Every call,
hit or not, is logged with its tokens, latency, cost, the run and method that made it
and, once the caller checked the answer, whether it parsed, so ``topicsent llm log``
can show what a run cost and how often its answers were usable. The file's layout has
a version (SQLite ``user_version``) and append-only migrations.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from topicsent.encoders._cache import cache_dir
from topicsent.errors import TopicsentError
from topicsent.llm._backend import RawCompletion

FILE_NAME = "llm.sqlite"
LLM_CACHE_ENV = "TOPICSENT_LLM_CACHE"

MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = []


def migration(function: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection], None]:
    """Append a schema change. The list only grows: a file at version ``n`` (SQLite's
    ``user_version``) gets the changes after the n-th, so an old log opens in a new version."""
    MIGRATIONS.append(function)
    return function


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


@migration
def m001_tables(db: sqlite3.Connection) -> None:
    """The first layout (files written before versions existed have it, or m002's too)."""
    db.executescript("""
        CREATE TABLE IF NOT EXISTS responses (
            key TEXT PRIMARY KEY, text TEXT NOT NULL, input_tokens INTEGER, output_tokens INTEGER, created REAL
        );
        CREATE TABLE IF NOT EXISTS calls (
            timestamp REAL, backend TEXT, model TEXT, prompt_hash TEXT, input_tokens INTEGER, output_tokens INTEGER,
            latency_ms REAL, cost_usd REAL, cache_hit INTEGER, outcome TEXT
        );
    """)  # fmt: skip


@migration
def m002_finish_reason(db: sqlite3.Connection) -> None:
    """Answers say why they stopped (a cut-off answer is not repaired)."""
    if "finish_reason" not in _columns(db, "responses"):  # unversioned files may have it already
        db.execute("ALTER TABLE responses ADD COLUMN finish_reason TEXT")


@migration
def m003_call_context(db: sqlite3.Connection) -> None:
    """Which run and method made a call, and whether its answer parsed (NULL: not parsed
    yet, or the call failed)."""
    for column in ("run_id", "method", "parse_status"):
        if column not in _columns(db, "calls"):  # another process may have just added it
            db.execute(f"ALTER TABLE calls ADD COLUMN {column} TEXT")


SCHEMA_VERSION = len(MIGRATIONS)
#: What ``parse_status`` says of a call's answer: all of it parsed, part of it (a batch
#: prompt with some reviews unusable), or none (a repair turn or an ``unparsed`` row follows).
PARSE_STATUSES = ("ok", "partial", "failed")


@dataclass(frozen=True)
class CallRecord:
    """One logged call. ``outcome`` is the call's ("ok", or the error that ended it);
    ``parse_status`` the answer's (:data:`PARSE_STATUSES`), set once the caller parsed it."""

    timestamp: float
    backend: str
    model: str
    prompt_hash: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float | None
    cache_hit: bool
    outcome: str
    run_id: str | None = None
    method: str | None = None
    parse_status: str | None = None


def llm_cache_path() -> Path:
    """``$TOPICSENT_LLM_CACHE``, else ``llm.sqlite`` in the cache directory (``$TOPICSENT_CACHE_DIR``)."""
    return Path(os.environ.get(LLM_CACHE_ENV) or cache_dir() / FILE_NAME)


class LlmStore:
    """Cache and log in ``path`` (default :func:`llm_cache_path`)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else llm_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            migrate(db)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        finally:
            db.close()

    def get(self, key: str) -> RawCompletion | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT text, input_tokens, output_tokens, finish_reason FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return RawCompletion(text=row[0], input_tokens=row[1] or 0, output_tokens=row[2] or 0, finish_reason=row[3])

    def put(self, key: str, completion: RawCompletion) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO responses (key, text, input_tokens, output_tokens, created, finish_reason) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, completion.text, completion.input_tokens, completion.output_tokens, time.time(), completion.finish_reason),
            )

    def log(self, record: CallRecord) -> int:
        """Append a call; returns its row id, for :meth:`set_parse_status`."""
        fields = asdict(record)
        with self._connect() as db:
            cursor = db.execute(f"INSERT INTO calls ({', '.join(fields)}) VALUES ({', '.join(':' + f for f in fields)})", fields)
        return int(cursor.lastrowid)

    def set_parse_status(self, call_ids: list[int], status: str) -> None:
        """Record how the answers of logged calls parsed (after the caller checked them)."""
        if status not in PARSE_STATUSES:
            raise ValueError(f"parse status {status!r} is not one of {PARSE_STATUSES}")
        with self._connect() as db:
            db.executemany("UPDATE calls SET parse_status = ? WHERE rowid = ?", [(status, i) for i in call_ids])

    def calls(self, *, since: float | None = None) -> list[CallRecord]:
        """Logged calls (since a Unix time), newest first."""
        names = [field.name for field in fields(CallRecord)]
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {', '.join(names)} FROM calls WHERE timestamp >= ? ORDER BY timestamp DESC", (since or 0.0,)
            ).fetchall()
        return [CallRecord(**dict(zip(names, row, strict=True)) | {"cache_hit": bool(row[8])}) for row in rows]


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection) -> int:
    """Bring the file to :data:`SCHEMA_VERSION`, one migration at a time; returns the
    version it had. A file from a newer topicsent is refused rather than damaged."""
    found = schema_version(db)
    if found > SCHEMA_VERSION:
        raise TopicsentError(
            f"the LLM cache was written by a newer topicsent (log schema {found}, this one reads up to {SCHEMA_VERSION}); "
            f"upgrade topicsent or point ${LLM_CACHE_ENV} at another file"
        )
    for step in MIGRATIONS[found:]:
        step(db)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return found
