"""Labelling and correcting reviews, active learning, retraining from the labels, and
Label Studio interoperability (``topicsent serve``'s labelling page and ``topicsent labels``)."""

from topicsent.labelling._learning import (
    curve_sizes,
    fit_labels,
    held_out_accuracy,
    prefill,
    refresh_queue,
    retrain,
    trainable,
)
from topicsent.labelling._project import (
    HELD_OUT_EVERY,
    LabelProject,
    check_name,
    list_projects,
    project_folder,
)
from topicsent.labelling._strategy import QueryStrategy, pool_vectors, review_uncertainty, uncertainty
from topicsent.labelling._studio import import_studio, label_config, studio_tasks

__all__ = [
    "HELD_OUT_EVERY", "LabelProject", "QueryStrategy", "check_name", "curve_sizes", "fit_labels", "held_out_accuracy",
    "import_studio", "label_config", "list_projects", "pool_vectors", "prefill", "project_folder", "refresh_queue",
    "retrain", "review_uncertainty", "studio_tasks", "trainable", "uncertainty",
]  # fmt: skip
