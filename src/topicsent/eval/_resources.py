"""Wall time and peak memory of a block of work, for the cost columns of the harness.

Peak memory is the process's resident high-water mark (VmHWM), reset before the block
through ``/proc/self/clear_refs`` so each method gets its own peak. Where the reset
is not allowed the peak is the process's lifetime peak, and ``peak_is_exact`` says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass
class Measurement:
    seconds: float = 0.0
    start_rss_mb: float | None = None
    peak_rss_mb: float | None = None
    peak_is_exact: bool = False

    @property
    def extra_peak_mb(self) -> float | None:
        """Peak resident memory above what the process held when the block began."""
        if self.peak_rss_mb is None or self.start_rss_mb is None:
            return None
        return max(0.0, self.peak_rss_mb - self.start_rss_mb)


def _status_mb(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@contextmanager
def measure() -> Iterator[Measurement]:
    """Measure the block: ``with measure() as m: ...`` then read ``m.seconds``, ``m.peak_rss_mb``."""
    result = Measurement(peak_is_exact=_reset_peak(), start_rss_mb=_status_mb("VmRSS"))
    began = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - began
        result.peak_rss_mb = _status_mb("VmHWM")
