"""The persistent response cache and the call log, one SQLite file.

Responses are keyed by everything that can change them (backend, model, messages,
which embed the versioned prompt templates, schema and decoding parameters), so a
second identical run makes no backend call and gives identical output. Every call,
hit or not, is logged with its tokens, latency and cost, so ``topicsent llm log``
can show what a run cost.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from topicsent.encoders._cache import cache_dir
from topicsent.llm._backend import RawCompletion

FILE_NAME = "llm.sqlite"
LLM_CACHE_ENV = "TOPICSENT_LLM_CACHE"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, text TEXT NOT NULL, input_tokens INTEGER, output_tokens INTEGER, created REAL,
    finish_reason TEXT
);
CREATE TABLE IF NOT EXISTS calls (
    timestamp REAL, backend TEXT, model TEXT, prompt_hash TEXT, input_tokens INTEGER, output_tokens INTEGER,
    latency_ms REAL, cost_usd REAL, cache_hit INTEGER, outcome TEXT
);
"""


@dataclass(frozen=True)
class CallRecord:
    timestamp: float
    backend: str
    model: str
    prompt_hash: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float | None
    cache_hit: bool
    outcome: str  # "ok", or the error that ended the call


def llm_cache_path() -> Path:
    """``$TOPICSENT_LLM_CACHE``, else ``llm.sqlite`` in the cache directory (``$TOPICSENT_CACHE_DIR``)."""
    return Path(os.environ.get(LLM_CACHE_ENV) or cache_dir() / FILE_NAME)


class LlmStore:
    """Cache and log in ``path`` (default :func:`llm_cache_path`)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else llm_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(responses)")}
            if "finish_reason" not in columns:  # a cache written before answers said why they stopped
                db.execute("ALTER TABLE responses ADD COLUMN finish_reason TEXT")

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

    def log(self, record: CallRecord) -> None:
        with self._connect() as db:
            db.execute("INSERT INTO calls VALUES (:timestamp, :backend, :model, :prompt_hash, :input_tokens, "
                       ":output_tokens, :latency_ms, :cost_usd, :cache_hit, :outcome)", asdict(record))  # fmt: skip

    def calls(self, *, since: float | None = None) -> list[CallRecord]:
        """Logged calls (since a Unix time), newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM calls WHERE timestamp >= ? ORDER BY timestamp DESC", (since or 0.0,)).fetchall()
        return [CallRecord(*row[:8], bool(row[8]), row[9]) for row in rows]
