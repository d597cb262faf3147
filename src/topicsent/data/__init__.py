"""Reviews in memory, the built-in datasets and readers for users' own files."""

from topicsent.data._builtin import DATASETS, DatasetInfo, data_dir, dataset_info, load_dataset
from topicsent.data._files import (
    FORMATS,
    ColumnMap,
    ReadLimits,
    count_rows,
    detect_language,
    read_reviews,
    review_batches,
    review_from_record,
    without_lone_surrogates,
)
from topicsent.data._reviews import AspectLabel, LabelSpace, Review, ReviewSet, Splits

__all__ = [
    "DATASETS", "FORMATS", "AspectLabel", "ColumnMap", "DatasetInfo", "LabelSpace", "ReadLimits", "Review", "ReviewSet",
    "Splits", "count_rows", "data_dir", "dataset_info", "detect_language", "load_dataset", "read_reviews", "review_batches",
    "review_from_record", "without_lone_surrogates",
]  # fmt: skip
