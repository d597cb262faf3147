"""Model files cannot run code: weights are safetensors, arrays are loaded without
pickle, configs are JSON. Each case plants a pickle that would create a marker file if
it were ever unpickled, and checks for a clear error and no marker."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pytest

from topicsent.encoders import resolve_encoder
from topicsent.encoders._transformer import TransformerEncoder
from topicsent.errors import ModelFileError
from topicsent.llm._transformers import TransformersBackend
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
