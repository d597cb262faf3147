"""Frozen encoders used as feature extractors, with an on-disk embedding cache."""

from topicsent.encoders._cache import CACHE_DIR_ENV, EmbeddingCache, cache_dir, content_key
from topicsent.encoders._transformer import PACKAGED_ENCODERS, TokenEmbeddings, TransformerEncoder, resolve_encoder

__all__ = [
    "CACHE_DIR_ENV", "PACKAGED_ENCODERS", "EmbeddingCache", "TokenEmbeddings", "TransformerEncoder",
    "cache_dir", "content_key", "resolve_encoder",
]  # fmt: skip
