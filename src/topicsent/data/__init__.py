"""Reviews in memory, the built-in datasets and readers for users' own files."""

from topicsent.data._builtin import DATASETS, DatasetInfo, data_dir, dataset_info, load_dataset
from topicsent.data._files import (
    FORMATS,
    ColumnMap,
    count_rows,
    detect_language,
    read_reviews,
    review_batches,
    review_from_record,
)
from topicsent.data._labels import label_problem, one_class_problem, span_problem
from topicsent.data._reviews import AspectLabel, LabelSpace, Review, ReviewSet, Splits

__all__ = [
    "DATASETS", "FORMATS", "AspectLabel", "ColumnMap", "DatasetInfo", "LabelSpace", "Review", "ReviewSet", "Splits",
    "count_rows", "data_dir", "dataset_info", "detect_language", "label_problem", "load_dataset", "one_class_problem",
    "read_reviews", "review_batches", "review_from_record", "span_problem",
]  # fmt: skip
