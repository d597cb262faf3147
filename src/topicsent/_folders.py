"""Folders: of installed packages, and written whole or not at all."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MODEL_DIR_ENV = "TOPICSENT_MODEL_DIR"


def model_dir() -> Path:
    """Where assembled models live (packaged LLMs, encoders assembled from registry
    wheels, rebuilt and dequantised bases): ``$TOPICSENT_MODEL_DIR`` or
    ``~/.cache/topicsent/models``."""
    return Path(os.environ.get(MODEL_DIR_ENV) or Path.home() / ".cache" / "topicsent" / "models")


def package_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it (some part
    packages' ``__init__`` import optional dependencies), or None if it is not installed."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


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
