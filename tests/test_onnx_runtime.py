"""finetune with runtime="onnx": the exported model answers as the torch one does (fp32
within 1e-4, int8 mostly the same labels), for both designs and every task, on real
reviews; a saved model predicts through its ONNX file without exporting again; a
missing extra is one line. One small fitted model per design and task (MiniLM, 1 epoch)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from topicsent.data import load_dataset
from topicsent.errors import InvalidParameterError, MissingExtraError
from topicsent.methods import BaseMethod, make_method
from topicsent.schema import Task

SMALL = {"epochs": 1, "max_length": 64, "precision": "fp32", "random_state": 0}  # torch bf16 autocast differs by ~1e-3
ONE_PASS = SMALL | {"design": "attention", "train_layers": 2}
#: (dataset, train reviews, test reviews, finetune parameters) per fitted model
MODELS = {
    "one-pass-acsa": ("mams-acsa", 120, 40, ONE_PASS),
    "one-pass-atsa": ("mams-atsa", 120, 40, ONE_PASS),
    "pair-acsa": ("mams-acsa", 50, 25, SMALL),
    "rating": ("womens-clothing", 120, 40, SMALL),
}
#: int8 labels agree with torch's on at least this share (measured on these samples:
#: 98-100%; the pair design's ATSA runs the same transformers classifier as pair-acsa)
INT8_AGREEMENT = 0.9


@pytest.fixture(scope="module")
def fitted() -> dict[str, tuple]:
    """name -> (fitted torch-runtime model, test reviews), fitted on first use."""
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            dataset, n_train, n_test, params = MODELS[name]
            splits = load_dataset(dataset)
            model = make_method("finetune", **params).fit(splits.train.sample(n_train, seed=1))
            cache[name] = (model, splits.test.sample(n_test, seed=2))
        return cache[name]

    return get


def probabilities(model, test) -> dict[str, np.ndarray]:
    """Every probability the model predicts from: rating classes; polarity of each gold
    aspect; (ACSA) mention of each category."""
    if model.task_ is Task.RATING:
        return {"rating": model.predict_proba(test.text_only())}
    found = {"polarity": model._polarity_proba([(review, aspect) for review in test for aspect in review.aspects])}
    if model.task_ is Task.ACSA:
        found["detection"] = model._detect_proba(list(test))
    return found


def labels(found: dict[str, np.ndarray]) -> np.ndarray:
    """The labels the probabilities give: classes by argmax, mentions above 0.5."""
    return np.concatenate([(v > 0.5).ravel() if k == "detection" else v.argmax(axis=1) for k, v in found.items()])


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_answers_as_torch_does(name, fitted):
    from topicsent.methods._onnx_runtime import OnnxModule

    model, test = fitted(name)
    try:
        torch_proba = probabilities(model.set_params(runtime="torch", quantize=False), test)
        fp32 = probabilities(model.set_params(runtime="onnx"), test)
        assert isinstance(model._predictor(), OnnxModule)
        fp32_bytes = model._predictor().path.stat().st_size
        int8 = probabilities(model.set_params(quantize=True), test)
        # the weights really are int8 (a graph whose weights the quantiser cannot find stays ~fp32 size)
        assert model._predictor().path.stat().st_size < 0.35 * fp32_bytes
    finally:
        model.set_params(runtime="torch", quantize=False)
    for key, expected in torch_proba.items():
        assert fp32[key].shape == expected.shape
        np.testing.assert_allclose(fp32[key], expected, atol=1e-4, err_msg=key)
        assert np.abs(int8[key] - fp32[key]).max() > 1e-4, "int8 weights change the outputs a little"
    for key, found in torch_proba.items():  # a model answering one class everywhere would agree trivially
        if key != "detection":
            assert len(set(found.argmax(axis=1))) > 1, f"{name}: torch predicts one {key} class for every input"
    agreement = float((labels(int8) == labels(torch_proba)).mean())
    print(f"{name}: int8 labels agree with torch on {agreement:.1%}")
    assert agreement >= INT8_AGREEMENT


@pytest.mark.parametrize(("name", "quantize"), [("one-pass-acsa", True), ("pair-acsa", False)])
def test_a_saved_onnx_model_predicts_without_exporting_again(name, quantize, fitted, tmp_path, monkeypatch):
    from topicsent.methods import _onnx_runtime

    model, test = fitted(name)
    try:
        model.set_params(runtime="onnx", quantize=quantize)
        answers = model.predict(test.unlabelled(), given_aspects=True)
        model.save(tmp_path / "m")
    finally:
        model.set_params(runtime="torch", quantize=False)
    file = "model.int8.onnx" if quantize else "model.onnx"
    assert sorted(p.name for p in (tmp_path / "m" / "model" / "onnx").iterdir()) == [file]
    card = (tmp_path / "m" / "model" / "README.md").read_text()
    assert "Runtime: ONNX Runtime" in card and ("int8" in card) == quantize

    def refuse(*args, **kwargs):
        raise AssertionError("a saved ONNX model is exported or quantised again")

    monkeypatch.setattr(_onnx_runtime, "export_onnx", refuse)
    monkeypatch.setattr(_onnx_runtime, "quantize_int8", refuse)
    loaded = BaseMethod.load(tmp_path / "m")
    assert (loaded.runtime, loaded.quantize) == ("onnx", quantize)
    again = loaded.predict(test.unlabelled(), given_aspects=True)
    assert [(a.aspect, a.polarity) for r in again for a in r.aspects] == [
        (a.aspect, a.polarity) for r in answers for a in r.aspects
    ]
    assert [a.confidence for r in again for a in r.aspects] == pytest.approx([a.confidence for r in answers for a in r.aspects])
    session = loaded._predictor()
    assert session.path.parent == tmp_path / "m" / "model" / "onnx"
    assert session.session.get_session_options().intra_op_num_threads == len(os.sched_getaffinity(0))
    # back to torch on the loaded model, without a refit; the torch card says so after a save
    loaded.set_params(runtime="torch", quantize=False).save(tmp_path / "m")
    assert not list((tmp_path / "m" / "model" / "onnx").glob("*.onnx"))
    assert "Runtime: torch" in (tmp_path / "m" / "model" / "README.md").read_text()


def test_a_missing_onnx_extra_is_one_line_before_training(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    train = load_dataset("mams-acsa").train.sample(30, seed=1)
    expected = r"^runtime='onnx' needs onnxruntime, which is not installed: install topicsent\[onnx\] "
    with pytest.raises(MissingExtraError, match=expected):
        make_method("finetune", runtime="onnx", **SMALL).fit(train)
    from pathlib import Path

    from topicsent.methods._onnx_runtime import OnnxModule

    with pytest.raises(MissingExtraError, match=r"pip install 'topicsent\[onnx\]'"):
        OnnxModule(Path("model.onnx"))


def test_int8_without_the_onnx_runtime_is_refused():
    train = load_dataset("mams-acsa").train.sample(30, seed=1)
    with pytest.raises(InvalidParameterError, match="set runtime='onnx'"):
        make_method("finetune", quantize=True, **SMALL).fit(train)
    with pytest.raises(InvalidParameterError, match="'runtime' parameter"):
        make_method("finetune", runtime="tensorrt", **SMALL).fit(train)


def test_the_runtime_does_not_change_a_training_checkpoint(tmp_path):
    """runtime and quantize choose what predicts after training: a training resumed with
    them changed continues its checkpoint instead of being refused as another training."""
    fingerprints = set()
    for params in ({}, {"runtime": "onnx", "quantize": True}):
        method = make_method("finetune", checkpoint_dir=str(tmp_path), **params)
        method.task_ = Task.ACSA
        fingerprints.add(method._checkpoint(["The pasta was great."]).fingerprint)
    assert len(fingerprints) == 1
