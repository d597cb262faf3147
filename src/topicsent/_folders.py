"""Folders: where assembled models live, of installed packages, written whole or not at
all, and locked while one process writes them."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from topicsent.errors import InvalidParameterError

LOCK_FILE = ".lock"
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


@contextmanager
def folder_replaced(target: Path) -> Iterator[Path]:
    """A scratch folder beside ``target`` that replaces it whole when the block ends: the
    old folder is set aside and removed only once the new one is in place, so no file of
    the old one is left mixed into the new, and a failure inside the block leaves the old
    one untouched."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
    old = target.with_name(f".{target.name}.old")
    try:
        yield scratch
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        scratch.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder/.lock`` for the block; while it is held another process is refused
    at once, in one line naming the holder. The lock is the kernel's (``flock``), so it
    ends with its holder however that dies (kill -9 included): a lock file left behind
    is simply taken over, never mistaken for a live writer. Local disks only (NFS may
    not honour it).

    Raises
    ------
    InvalidParameterError : another live process holds the folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK_FILE).open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise InvalidParameterError(
                f"{folder} is in use by {holder}; wait for it to finish, or choose another --out"
            ) from None
        handle.truncate(0)
        handle.write(f"topicsent (pid {os.getpid()} on {socket.gethostname()})")
        handle.flush()
        yield
