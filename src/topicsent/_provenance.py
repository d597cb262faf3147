"""Where results came from: the code's commit (numbers compare across commits) and
file fingerprints (a model or input is recognised, a download is verified)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read in 4 MiB blocks (GGUF models are gigabytes)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def path_sha256(path: Path) -> str:
    """The hex sha256 of a file, or of a folder: every file under it, by relative path and
    contents in path order, so adding, removing, renaming or changing any file changes it."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{member.relative_to(path).as_posix()}\0{file_sha256(member)}\n".encode())
    return digest.hexdigest()


def git_commit() -> str:
    """The commit of the topicsent checkout that is running (not of the working
    directory), with ``-dirty`` when it has uncommitted changes; ``unknown`` for an
    installed wheel."""
    here = Path(__file__).parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True, cwd=here
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=here
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")
