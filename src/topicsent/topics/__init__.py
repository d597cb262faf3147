"""Topics without a taxonomy: discovery, the taxonomy file, quality measures, per-topic
sentiment and key drivers."""

from topicsent.topics._analysis import TopicAnalysis, analyze_topics, write_labelled
from topicsent.topics._discover import (
    AUTO_MEMBER_SHARE,
    UNITS,
    Discovery,
    Segment,
    assign_outliers,
    check_outlier_options,
    discover_topics,
    reassign_outliers,
    segments_of,
)
from topicsent.topics._drivers import key_drivers, topic_summary, topic_trend
from topicsent.topics._naming import NamingOutcome, name_topics, naming_prompt, naming_prompt_hash
from topicsent.topics._quality import alignment, coherence, diversity, topic_quality
from topicsent.topics._taxonomy import OUTLIER, OutlierAssignment, Taxonomy, Topic

__all__ = [
    "AUTO_MEMBER_SHARE", "OUTLIER", "UNITS", "Discovery", "NamingOutcome", "OutlierAssignment", "Segment", "Taxonomy",
    "Topic", "TopicAnalysis", "alignment", "analyze_topics", "assign_outliers", "check_outlier_options", "coherence",
    "discover_topics", "diversity", "key_drivers", "name_topics", "naming_prompt", "naming_prompt_hash",
    "reassign_outliers", "segments_of", "topic_quality", "topic_summary", "topic_trend", "write_labelled",
]  # fmt: skip
