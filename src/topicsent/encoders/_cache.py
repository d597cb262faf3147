"""A content-addressed on-disk cache of embeddings.

Encoding is the expensive step of every embedding method (a few hundred sentences
per second on two cores), so each (encoder, settings, text) is encoded once: re-runs,
hyper-parameter searches and the harness's tuning grid read it back from here. The
store is one SQLite file; arrays are saved with ``np.save`` and read back with
``allow_pickle=False``, so a cache file cannot execute code.
"""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

CACHE_DIR_ENV = "TOPICSENT_CACHE_DIR"


def cache_dir() -> Path:
    """``$TOPICSENT_CACHE_DIR``, else ``~/.cache/topicsent``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "topicsent")


def content_key(namespace: str, text: str) -> str:
    """Stable key of ``text`` under an encoder's ``namespace`` (model and settings)."""
    return hashlib.blake2b(f"{namespace}\x00{text}".encode(), digest_size=20).hexdigest()


def _to_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _from_bytes(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


class EmbeddingCache:
    """Maps content keys to small dicts of arrays, persisted in ``embeddings.sqlite``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or cache_dir()) / "embeddings.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS embedding (key TEXT PRIMARY KEY, arrays BLOB NOT NULL)")

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
        found: dict[str, dict[str, np.ndarray]] = {}
        for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(f"SELECT key, arrays FROM embedding WHERE key IN ({marks})", chunk):
                found[key] = _from_bytes(blob)
        return found

    def put_many(self, items: Iterable[tuple[str, dict[str, np.ndarray]]]) -> None:
        """Store entries in one transaction, so a crash leaves whole batches or nothing."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embedding (key, arrays) VALUES (?, ?)",
                ((key, _to_bytes(arrays)) for key, arrays in items),
            )

    def close(self) -> None:
        self._db.close()
