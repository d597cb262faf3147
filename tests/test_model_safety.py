"""Model files cannot run code: weights are safetensors, arrays are loaded without
pickle, configs are JSON. Each case plants a pickle that would create a marker file if
it were ever unpickled, and checks for a clear error and no marker."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from topicsent.encoders import TransformerEncoder, resolve_encoder
from topicsent.errors import ModelFileError
from topicsent.llm import TransformersBackend
from topicsent.methods import BaseMethod, make_method


class _Payload:
    """Unpickling this creates ``path``: the stand-in for arbitrary code."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.fixture
def planted(tmp_path):
    """(a folder with a real config.json and pickled 'weights', the marker path)."""
    marker = tmp_path / "code-ran"
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(resolve_encoder("all-MiniLM-L6-v2") / "config.json", folder / "config.json")
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    return folder, marker


def test_pickled_weights_are_refused_by_encoders_and_llm_backends(planted):
    folder, marker = planted
    with pytest.raises(ModelFileError, match="only safetensors"):
        TransformerEncoder(str(folder))
    with pytest.raises(ModelFileError, match="only safetensors"):
        TransformersBackend(str(folder))
    assert not marker.exists()


def test_a_pickle_in_a_saved_model_is_a_clear_error_not_code(task_data, tmp_path):
    train, _ = task_data["rating"]
    saved = make_method("tfidf-lr").fit(train[:200]).save(tmp_path / "model")
    marker = tmp_path / "code-ran"
    states = list(saved.glob("*.npz"))
    assert states, "tfidf-lr keeps its weights in .npz files"
    for state in states:
        np.save(state.with_suffix(""), np.array([_Payload(marker)], dtype=object), allow_pickle=True)
        (state.with_suffix("").with_suffix(".npy")).replace(state)
    with pytest.raises(ModelFileError, match="damaged"):
        BaseMethod.load(saved)
    assert not marker.exists()


@pytest.mark.parametrize(
    "config",
    [
        {"method": "../../../etc/passwd"},
        {"method": "tfidf-lr", "params": {"__class__": "os.system"}},
        {"method": "tfidf-lr", "params": "C=1; import os"},
    ],
)
def test_a_tampered_config_is_refused(task_data, tmp_path, config):
    train, _ = task_data["rating"]
    saved = make_method("tfidf-lr").fit(train[:200]).save(tmp_path / "model")
    original = json.loads((saved / "topicsent.json").read_text())
    (saved / "topicsent.json").write_text(json.dumps(original | config))
    with pytest.raises(ModelFileError, match="malformed model config"):
        BaseMethod.load(saved)


@pytest.mark.parametrize(
    "calibration",
    [
        {"knots": [0.9, 0.1], "values": [0.2, 0.3]},  # not ascending
        {"knots": [0.1, float("nan")], "values": [0.2, 0.3]},
        {"knots": [0.1, 0.9], "values": [0.2, 7.0]},  # not a probability
        {"knots": [0.1], "values": [0.2, 0.3]},
        {"knots": "import os"},
    ],
)
def test_a_tampered_calibration_is_refused(task_data, tmp_path, calibration):
    train, test = task_data["acsa"]
    method = make_method("tfidf-lr").fit(train).calibrate(test)
    saved = method.save(tmp_path / "model")
    (saved / "calibration.json").write_text(json.dumps(calibration))
    with pytest.raises(ModelFileError, match="damaged"):
        BaseMethod.load(saved)


#: Cheap fitted models whose every file the damage test breaks (settings as in test_contract).
DAMAGE_MODELS = {
    "majority": ("acsa", {}),
    "tfidf-lr": ("acsa", {}),
    "tfidf-lr-rating": ("rating", {}),
    "lda": ("acsa", {"n_topics": 5, "iterations": 30, "min_count": 1}),
    "stack": ("acsa", {"members": "tfidf-lr[C=1.0]+tfidf-lr[C=16.0,max_features=5000]"}),
}
_SAVED: dict[str, object] = {}


def run_cli(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "topicsent.interfaces", *args], capture_output=True, text=True, input=stdin, timeout=600,
        env=os.environ | {"COLUMNS": "1000"},
    )  # fmt: skip


def _saved_model(name: str, task_data, tmp_path_factory):
    """The model folder of ``name``, fitted and saved once per test process."""
    if name not in _SAVED:
        task, params = DAMAGE_MODELS[name]
        train, _ = task_data[task]
        method = make_method(name.removesuffix("-rating"), random_state=0, **params).fit(train, task)
        _SAVED[name] = method.save(tmp_path_factory.mktemp(name) / "model")
    return _SAVED[name]


def _flip_types(value):
    """Every JSON leaf as another type: strings become numbers, numbers and booleans strings."""
    if isinstance(value, dict):
        return {key: _flip_types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_flip_types(item) for item in value] or [7]
    if isinstance(value, str):
        return 7
    return value if value is None else "abc"


def _impossible_configs(config: dict) -> list[dict]:
    """Configs of the right types whose values no fit would accept."""
    broken = [config | {"label_space": config["label_space"] | {"polarities": []}}]
    broken += [config | {"params": config["params"] | {param: -5}} for param, value in config["params"].items()
               if isinstance(value, int | float) and not isinstance(value, bool)]  # fmt: skip
    broken += [config | {"params": config["params"] | {param: "abc"}} for param in config["params"]]
    return broken


def _damaged_versions(path, damage: str) -> list[bytes]:
    """The bytes of ``path`` after ``damage``; none when the damage does not apply to its kind."""
    data = path.read_bytes()
    if damage == "truncated":
        return [data[: len(data) // 2]]
    if damage == "empty":
        return [b""]
    if path.suffix == ".json" and damage in ("json-types", "impossible"):
        config = json.loads(data)
        if damage == "json-types":
            return [json.dumps(_flip_types(config)).encode(), b"[" * 100_000, json.dumps([config]).encode()]
        return [json.dumps(c).encode() for c in _impossible_configs(config)] if path.name == "topicsent.json" else []
    if path.suffix == ".npz" and damage in ("nan", "shape"):
        with np.load(path, allow_pickle=False) as arrays:
            original = {key: arrays[key] for key in arrays.files}
        versions = []
        for key, array in original.items():
            if damage == "shape" and array.ndim == 0:
                continue
            if damage == "nan":
                changed = array.astype(np.float64) if array.dtype.kind in "fiu" else np.full(array.shape, np.nan)
                changed.flat[0] = np.nan
            else:  # one feature (column) or one entry less
                changed = array[..., :-1] if array.ndim == 2 else array[:-1]
            buffer = io.BytesIO()
            np.savez(buffer, **(original | {key: changed}))
            versions.append(buffer.getvalue())
        return versions
    return []


@pytest.mark.parametrize("damage", ["truncated", "empty", "json-types", "impossible", "nan", "shape"])
@pytest.mark.parametrize("name", list(DAMAGE_MODELS))
def test_every_damaged_model_file_is_one_error_naming_it(name, damage, task_data, tmp_path, tmp_path_factory):
    saved = _saved_model(name, task_data, tmp_path_factory)
    files = sorted(p.relative_to(saved) for p in saved.rglob("*") if p.is_file())
    checked, cli_checked = 0, False
    for relative in files:
        for number, damaged in enumerate(_damaged_versions(saved / relative, damage)):
            folder = tmp_path / f"{str(relative).replace('/', '-')}-{number}"
            shutil.copytree(saved, folder)
            (folder / relative).write_bytes(damaged)
            with pytest.raises(ModelFileError) as raised:
                BaseMethod.load(folder)
            message = str(raised.value)
            assert str(folder / relative) in message, f"{relative} ({damage} #{number}): {message}"
            assert "\n" not in message
            checked += 1
            if not cli_checked:  # the CLI says the same in one line, exit code 2
                result = run_cli("predict", "--model", str(folder), "-", "-o", str(tmp_path / "out.csv"), stdin="Nice food\n")
                assert result.returncode == 2, result.stderr
                assert result.stderr.strip().count("\n") == 0 and str(folder / relative) in result.stderr, result.stderr
                cli_checked = True
    if damage not in ("nan", "shape") or name != "majority":  # majority keeps its priors in JSON, not arrays
        assert checked, f"no file of {name} took the damage {damage}"
