"""Folders written whole or not at all."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def folder_written_once(target: Path, *, marker: str = "model.safetensors") -> Iterator[Path]:
    """A scratch folder beside ``target``, renamed into place when the block ends, so a
    crash or a second process never leaves a half-written folder behind. If another
    process renamed its copy first (``target/marker`` exists), that copy is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    try:
        yield scratch
        try:
            scratch.rename(target)
        except OSError:
            if not (target / marker).is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
