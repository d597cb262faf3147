"""What every frozen encoder shares: caching by content, and the sentence-vector call."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from topicsent.encoders._cache import EmbeddingCache, content_key


class CachedEncoder(ABC):
    """An encoder whose outputs are cached on disk by (namespace, kind, text).

    Subclasses give a ``namespace`` (what makes vectors differ: weights and settings),
    ``dim``, and ``_encode(texts, kind)`` returning one dict of arrays per text; kind
    ``"mean"`` must hold the sentence vector under ``"mean"``.
    """

    #: Whether ``tokens()`` works (per-token vectors), needed by attention heads.
    gives_tokens = False

    def __init__(self, *, cache: bool = True) -> None:
        self.cache = EmbeddingCache() if cache else None

    @property
    @abstractmethod
    def namespace(self) -> str: ...

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    def _encode(self, texts: list[str], kind: str) -> list[dict[str, np.ndarray]]: ...

    def sentences(self, texts: Sequence[str]) -> np.ndarray:
        """Sentence vectors, shape ``(len(texts), dim)``."""
        if not texts:
            return np.empty((0, self.dim))
        return np.stack([a["mean"].astype(np.float32) for a in self._cached(texts, "mean")])

    def _cached(self, texts: Sequence[str], kind: str) -> list[dict[str, np.ndarray]]:
        keys = [content_key(f"{self.namespace}|{kind}", text) for text in texts]
        found = self.cache.get_many(list(dict.fromkeys(keys))) if self.cache else {}
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        if missing:
            computed = self._encode(missing, kind)
            fresh = {content_key(f"{self.namespace}|{kind}", t): arrays for t, arrays in zip(missing, computed, strict=True)}
            if self.cache:
                self.cache.put_many(fresh.items())
            found |= fresh
        return [found[k] for k in keys]
