"""Language-aware text preparation: content words and sentences for the topic models,
Korean morphemes for the linear classifiers."""

from topicsent.text._tokenize import content_words, korean_morphemes, split_sentences

__all__ = ["content_words", "korean_morphemes", "split_sentences"]
