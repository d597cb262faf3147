"""``topicsent adapt``: continued masked-LM pretraining on real unlabelled reviews (MAMS
restaurant sentences), the folder it writes used by path, resume after a kill, and the
bad inputs it refuses in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from topicsent.data import load_dataset
from topicsent.encoders import make_encoder, resolve_encoder
from topicsent.errors import InputDataError, InvalidParameterError
from topicsent.methods import AdaptConfig, adapt_encoder, read_corpus

CLI = [sys.executable, "-m", "topicsent.interfaces"]
BASE = "all-MiniLM-L6-v2"
TINY = {"batch_size": 8, "max_length": 64, "checkpoint_every": 5}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"COLUMNS": "200"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """300 real restaurant review sentences, unlabelled, as a CSV with its text in column ``body``."""
    folder = tmp_path_factory.mktemp("adapt-corpus")
    reviews = load_dataset("mams-acsa").train.sample(300, seed=5)
    pd.DataFrame({"body": [r.text for r in reviews], "stars": 3}).to_csv(folder / "reviews.csv", index=False)
    return folder / "reviews.csv"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """150 real clothing reviews with their 1-5 stars, for the downstream training."""
    folder = tmp_path_factory.mktemp("adapt-labelled")
    reviews = load_dataset("womens-clothing").train.sample(150, seed=5)
    pd.DataFrame({"text": [r.text for r in reviews], "stars": [r.rating for r in reviews]}).to_csv(
        folder / "labels.csv", index=False
    )
    return folder / "labels.csv"


def test_adapt_then_train_on_the_adapted_encoder_by_path(corpus, labelled, tmp_path):
    adapted = run(
        "adapt", str(corpus), "--base", BASE, "--text-col", "body", "-o", "enc", "--max-steps", "20", "--batch-size", "16",
        "--max-length", "64", cwd=tmp_path,
    )  # fmt: skip
    assert adapted.returncode == 0, adapted.stderr
    assert "20 steps" in adapted.stdout and "held-out MLM loss" in adapted.stdout
    folder = tmp_path / "enc"
    facts = json.loads((folder / "adapt.json").read_text(encoding="utf-8"))
    assert facts["steps"] == 20 and facts["fresh_head"] is True  # the packaged MiniLM has no MLM head
    assert facts["corpus"]["rows"] == 300 and facts["corpus"]["sampled"] == 300
    losses = [point["loss"] for point in facts["train_curve"]]
    assert len(losses) == 20 and np.mean(losses[-5:]) < np.mean(losses[:5]) - 1.0  # the MLM loss falls on real text
    assert facts["held_out"]["loss_after"] < facts["held_out"]["loss_before"] - 1.0
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert facts["corpus"]["sha256"] in card and "a new MLM head" in card and "| 20 |" in card
    assert {"model.safetensors", "tokenizer.json", "modules.json", "1_Pooling"} <= {p.name for p in folder.iterdir()}
    assert not (tmp_path / "enc.checkpoint").exists()  # the result replaced the checkpoint

    for method, params in (("finetune", {"base": "enc", "epochs": 1, "max_length": 64}), ("embed-head", {"encoder": "enc"})):
        trained = run("train", str(labelled), "--rating-col", "stars", "-m", method, "--params", json.dumps(params),
                      "-o", f"model-{method}", cwd=tmp_path)  # fmt: skip
        assert trained.returncode == 0, trained.stderr
        assert f"Trained {method} for rating on 150 reviews" in trained.stdout


def test_the_adapted_folder_loads_as_a_sentence_encoder(corpus, tmp_path):
    """What setfit (SentenceTransformer) and topics (make_encoder) read: the base's
    pooling kept, the pooler kept for finetune, new vectors."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    adapt_encoder(corpus, BASE, tmp_path / "enc", AdaptConfig(text_col="body", max_steps=3, **TINY))
    texts = ["The pasta was cold.", "Friendly staff and a quiet room."]
    body = SentenceTransformer(str(tmp_path / "enc"), device="cpu")
    assert [type(m).__name__ for m in body] == ["Transformer", "Pooling", "Normalize"]
    assert body.encode(texts).shape == (2, 384)
    adapted, base = make_encoder(str(tmp_path / "enc")).sentences(texts), make_encoder(BASE).sentences(texts)
    assert adapted.shape == base.shape and not np.allclose(adapted, base, atol=1e-4)
    pooler = AutoModel.from_pretrained(tmp_path / "enc").pooler.dense.weight
    assert pooler.equal(AutoModel.from_pretrained(resolve_encoder(BASE)).pooler.dense.weight)  # not a random new one


def test_a_killed_adaptation_resumes_and_continues_the_step_count(corpus, tmp_path, monkeypatch):
    """Killed at its first checkpoint (step 5) and started again with --resume, an
    adaptation ends with the losses of one that ran through: same masks, order,
    dropout, optimiser and schedule."""
    from topicsent.methods import _finetuning

    config = AdaptConfig(text_col="body", max_steps=10, **TINY)
    straight = adapt_encoder(corpus, BASE, tmp_path / "straight", config)
    save = _finetuning._EpochState.save

    def save_then_die(self, *args):
        save(self, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(_finetuning._EpochState, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        adapt_encoder(corpus, BASE, tmp_path / "enc", config)
    monkeypatch.setattr(_finetuning._EpochState, "save", save)
    state = json.loads((tmp_path / "enc.checkpoint" / "state.json").read_text(encoding="utf-8"))
    assert state["step"] == 5
    with pytest.raises(InvalidParameterError, match="unfinished adaptation; add --resume"):
        adapt_encoder(corpus, BASE, tmp_path / "enc", config)
    resumed = adapt_encoder(corpus, BASE, tmp_path / "enc", config, resume=True)
    assert resumed.resumed_from == 5 and resumed.steps == 10
    assert [p["loss"] for p in resumed.train_curve][:5] == state["losses"]
    np.testing.assert_allclose([p["loss"] for p in resumed.train_curve], [p["loss"] for p in straight.train_curve], rtol=1e-5)


def test_a_time_budget_stops_and_writes_what_it_reached(corpus, tmp_path):
    report = adapt_encoder(corpus, BASE, tmp_path / "enc", AdaptConfig(text_col="body", max_minutes=1e-4, **TINY))
    assert report.stopped_by == "max_minutes" and report.steps < report.planned_steps
    assert (tmp_path / "enc" / "model.safetensors").is_file()
    (tmp_path / "enc" / "stale.txt").write_text("from an older adaptation", encoding="utf-8")
    adapt_encoder(corpus, BASE, tmp_path / "enc", AdaptConfig(text_col="body", max_minutes=1e-4, **TINY), overwrite=True)
    assert (tmp_path / "enc" / "model.safetensors").is_file() and not (tmp_path / "enc" / "stale.txt").exists()


def test_a_corpus_is_sampled_in_one_pass_with_a_seed(corpus):
    first, again = read_corpus(corpus, "body", max_texts=50, seed=1), read_corpus(corpus, "body", max_texts=50, seed=1)
    assert len(first.texts) == 50 and first.texts == again.texts and first.rows == first.usable == 300
    assert read_corpus(corpus, "body", max_texts=50, seed=2).texts != first.texts


@pytest.fixture
def decoder_folder(tmp_path) -> Path:
    """A folder that looks like a model but is a decoder (GPT-2) config."""
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}), encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def test_bad_inputs_are_refused_in_one_line(corpus, decoder_folder, tmp_path):
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"body": ["", "   ", None], "stars": [1, 2, 3]}).to_csv(empty, index=False)
    with pytest.raises(InputDataError, match=r"empty.csv: no usable text in column 'body' \(3 rows"):
        adapt_encoder(empty, BASE, tmp_path / "a", AdaptConfig(text_col="body"))
    with pytest.raises(InputDataError, match=r"no column 'text' for the text .*choose one with --text-col"):
        adapt_encoder(corpus, BASE, tmp_path / "a")
    with pytest.raises(InvalidParameterError, match=r"\(gpt2\) is not a masked language model"):
        adapt_encoder(corpus, str(decoder_folder), tmp_path / "a", AdaptConfig(text_col="body"))
    with pytest.raises(InvalidParameterError, match="is a GGUF decoder LLM, not a masked language model"):
        adapt_encoder(corpus, "smollm2-135m-instruct", tmp_path / "a", AdaptConfig(text_col="body"))
    with pytest.raises(InvalidParameterError, match=r"The 'max_steps' parameter of adapt must be > 0\. Got 0"):
        AdaptConfig(max_steps=0)
    (tmp_path / "taken").mkdir()
    with pytest.raises(InvalidParameterError, match=r"output folder .*taken exists; choose another -o or add --overwrite"):
        adapt_encoder(corpus, BASE, tmp_path / "taken")


def test_the_cli_says_what_is_wrong_in_one_line_with_exit_code_2(corpus, decoder_folder, tmp_path):
    (tmp_path / "taken").mkdir()
    for args, message in (
        (["-o", "taken"], "taken exists; choose another -o or add --overwrite"),
        (["-o", "new", "--base", str(decoder_folder)], "is not a masked language model"),
    ):
        result = run("adapt", str(corpus), "--text-col", "body", *args, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
