"""Self-contained HTML reports of analysis runs and method comparisons."""

from topicsent.report._render import build_report

__all__ = ["build_report"]
