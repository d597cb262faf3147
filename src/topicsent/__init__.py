"""topicsent: topic-wise (aspect-wise) sentiment analysis and rating prediction of reviews.

Everything a user needs is importable from here: every method by class
(``from topicsent import TfidfLRMethod``) and by name (``make_method("tfidf-lr")``),
the datasets and file readers, the output schema, the evaluation harness and the
errors. Names are imported on first use, so ``import topicsent`` stays light and
methods with heavy dependencies load only when asked for.

Examples
--------
>>> import topicsent
>>> model = topicsent.make_method("majority")
>>> type(model) is topicsent.MajorityMethod
True
>>> "ReviewAnalysis" in dir(topicsent) and "LlmMethod" in topicsent.__all__
True
"""

from __future__ import annotations

import importlib
from typing import Any

from topicsent._version import __version__ as __version__

#: The public module -> the names it gives this package.
_PUBLIC: dict[str, tuple[str, ...]] = {
    "topicsent.methods": ("BaseMethod", "AspectPipelineMethod", "make_method", "method_class", "method_names",
                          "parse_method_spec"),
    "topicsent.data": ("DATASETS", "AspectLabel", "ColumnMap", "LabelSpace", "Review", "ReviewSet", "Splits", "dataset_info",
                       "file_splits", "load_dataset", "read_reviews", "sample_path"),
    "topicsent.schema": ("AspectSentiment", "Overall", "Predictions", "ReviewAnalysis", "Span", "Task", "Usage", "json_schema",
                         "read_jsonl", "to_dataframe", "write_analyses"),
    "topicsent.eval": ("evaluate_method", "run_evaluation", "score", "write_run"),
    "topicsent.errors": ("TopicsentError", "InputDataError", "InvalidParameterError", "ModelFileError", "NotFittedError",
                         "UnknownNameError", "UnsupportedTaskError"),
}  # fmt: skip
_EXPORTS = {name: module for module, names in _PUBLIC.items() for name in names}


def _method_classes() -> dict[str, str]:
    from topicsent.methods import method_class_names

    return method_class_names()


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted({*_EXPORTS, *_method_classes()})
    if name.startswith("__"):  # probes such as __wrapped__ must not load the methods
        raise AttributeError(f"module 'topicsent' has no attribute {name!r}")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in (classes := _method_classes()):
        from topicsent.methods import method_class

        value = method_class(classes[name])
    else:
        raise AttributeError(f"module 'topicsent' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_method_classes()})
