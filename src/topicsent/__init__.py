"""topicsent: topic-wise (aspect-wise) sentiment analysis and rating prediction of reviews.

The public surface: the output schema (:mod:`topicsent.schema`), review data and
loaders (:mod:`topicsent.data`), methods (:mod:`topicsent.methods`) and the
evaluation harness (:mod:`topicsent.eval`).
"""

__version__ = "0.1.0"
