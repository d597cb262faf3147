"""Frozen encoders used as feature extractors, with an on-disk embedding cache."""

from topicsent.encoders._assembled import ASSEMBLED_ENCODERS, AssembledEncoder, WheelChunk
from topicsent.encoders._base import CachedEncoder
from topicsent.encoders._cache import CACHE_DIR_ENV, EmbeddingCache, cache_dir, content_key
from topicsent.encoders._catalogue import PACKAGE_ENCODER_FACTS, EncoderFacts, EncoderState, encoder_facts, encoder_states
from topicsent.encoders._e5 import write_sentence_transformer_files
from topicsent.encoders._pooled import POOLED_ENCODERS, PooledEncoder
from topicsent.encoders._transformer import (
    PACKAGED_ENCODERS,
    REBUILT_ENCODERS,
    TRANSFORMER_ENCODERS,
    TokenEmbeddings,
    TransformerEncoder,
    resolve_encoder,
)

#: The packaged sentence encoder for reviews in each language (others: multilingual-e5).
DEFAULT_ENCODERS = {"en": "all-MiniLM-L6-v2", "ko": "multilingual-e5-small"}


def default_encoder(language: str | None) -> str:
    return DEFAULT_ENCODERS.get(language or "", "multilingual-e5-small")


def make_encoder(name_or_path: str, *, max_length: int = 128, quantize: bool = False, tokens: bool = False) -> CachedEncoder:
    """A packaged multilingual sentence encoder by name, else a transformer encoder
    (packaged name or local directory), optionally with int8 weights. With ``tokens``
    a pooled encoder's rebuilt transformers twin is used, for its token vectors."""
    if name_or_path in POOLED_ENCODERS and not (tokens and name_or_path in REBUILT_ENCODERS):
        return PooledEncoder(name_or_path)
    return TransformerEncoder(name_or_path, max_length=max_length, quantize=quantize)


__all__ = [
    "ASSEMBLED_ENCODERS", "CACHE_DIR_ENV", "DEFAULT_ENCODERS", "PACKAGED_ENCODERS", "PACKAGE_ENCODER_FACTS", "POOLED_ENCODERS",
    "REBUILT_ENCODERS", "TRANSFORMER_ENCODERS", "AssembledEncoder", "CachedEncoder", "EmbeddingCache", "EncoderFacts",
    "EncoderState", "PooledEncoder", "TokenEmbeddings", "TransformerEncoder", "WheelChunk", "cache_dir", "content_key",
    "default_encoder", "encoder_facts", "encoder_states", "make_encoder", "resolve_encoder", "write_sentence_transformer_files",
]  # fmt: skip
