"""Reviews in memory, the built-in datasets and readers for users' own files."""

from topicsent.data._builtin import DATASETS, DatasetInfo, data_dir, dataset_info, load_dataset, sample_path
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
from topicsent.data._frames import as_review_set, as_reviews
from topicsent.data._labels import check_labels, label_problem, one_class_problem, overlap_problem, span_problem
from topicsent.data._reviews import AspectLabel, LabelSpace, OpinionLabel, Review, ReviewSet, Splits
from topicsent.data._splits import TEST_SHARE, file_splits, infer_task, stratified_split

__all__ = [
    "DATASETS", "FORMATS", "TEST_SHARE", "AspectLabel", "ColumnMap", "DatasetInfo", "LabelSpace", "OpinionLabel", "ReadLimits",
    "Review", "ReviewSet", "Splits", "as_review_set", "as_reviews", "check_labels", "count_rows", "data_dir", "dataset_info",
    "detect_language", "file_splits", "infer_task", "label_problem", "load_dataset", "one_class_problem", "overlap_problem",
    "read_reviews", "review_batches", "review_from_record", "sample_path", "span_problem", "stratified_split",
    "without_lone_surrogates",
]  # fmt: skip
