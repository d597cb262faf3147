"""Language-aware text preparation shared by the topic models: content words and sentences."""

from topicsent.text._tokenize import content_words, split_sentences

__all__ = ["content_words", "split_sentences"]
