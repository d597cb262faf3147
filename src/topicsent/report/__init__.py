"""Self-contained HTML reports of analysis runs and method comparisons."""

from topicsent.report._data import read_eval
from topicsent.report._render import build_report

__all__ = ["build_report", "read_eval"]
