"""The `sft` method end to end on real MAMS reviews with the packaged SmolLM2-135M: a few
LoRA steps, the curve of real answers, the adapter exported for llama.cpp, saved, loaded
and used by the `llm` method; and the export checked against transformers' own forward pass."""

from __future__ import annotations

import json

import numpy as np
import pytest

from topicsent.data import load_dataset
from topicsent.errors import InputDataError
from topicsent.methods import BaseMethod, make_method
from topicsent.methods._finetuning import resolve_base
from topicsent.methods.llm import sft_examples
from topicsent.methods.llm._lora_gguf import export_lora_gguf
from topicsent.methods.llm._tuning import load_causal_lm

BASE = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def mams():
    splits = load_dataset("mams-acsa")
    return splits.train.sample(40, seed=5), splits.test.sample(4, seed=5)


@pytest.mark.llamacpp  # the validation curve and the saved adapter are answered on llama.cpp
def test_a_tiny_sft_learns_answers_in_the_schema_and_its_saved_adapter_serves_sft_and_llm(mams, tmp_path):
    """One fit (the costly part) for both checks, so parallel workers never repeat it."""
    train, test = mams
    tuned = make_method("sft", base=BASE, max_steps=4, eval_every=4, validation_reviews=3, learning_rate=1e-3).fit(train)
    curve = tuned.training_report_.curve
    assert [point["step"] for point in curve] == [0, 4]
    assert curve[-1]["validation_loss"] < curve[0]["validation_loss"]  # the gold answers became more likely
    assert all(0.0 <= point["validation_accuracy"] <= 1.0 and point["parsed"] > 0 for point in curve)
    assert tuned.training_report_.best_step in (0, 4)
    answers = tuned.predict_labelled(test)
    assert all(answer.model == f"{BASE}+lora" for answer in answers)
    for review, answer in zip(test, answers, strict=True):
        assert answer.status in ("ok", "unparsed")
        if answer.status == "ok":
            assert [a.aspect for a in answer.aspects] == [a.name for a in review.aspects]
    _saved_adapter_serves_sft_and_llm(tuned, test, tmp_path)


def _saved_adapter_serves_sft_and_llm(tuned, test, tmp_path) -> None:
    tuned.save(tmp_path / "sft")
    adapter = tmp_path / "sft" / "adapter"
    saved = {p.name for p in adapter.iterdir()}
    assert {"adapter.gguf", "adapter_model.safetensors", "adapter_config.json", "README.md"} <= saved
    card = (adapter / "README.md").read_text(encoding="utf-8")
    assert f"`{BASE}`" in card and "| 4 |" in card
    loaded = BaseMethod.load(tmp_path / "sft")
    assert loaded.adapter_id_ == tuned.adapter_id_
    expected = [a.model_dump(exclude={"usage"}) for a in tuned.predict_labelled(test)]
    assert [a.model_dump(exclude={"usage"}) for a in loaded.predict_labelled(test)] == expected
    prompted = make_method(
        "llm", backend="llamacpp", model=BASE, backend_options={"lora": str(adapter / "adapter.gguf")},
        evidence=False, max_tokens=tuned.max_tokens, max_review_chars=tuned.max_review_chars, cache=False,
    ).fit(load_dataset("mams-acsa").train.sample(10, seed=5))  # fmt: skip
    by_llm = prompted.predict_labelled(test)
    assert [[(a.aspect, a.polarity) for a in r.aspects] for r in by_llm] == [
        [(a["aspect"], a["polarity"]) for a in row["aspects"]] for row in expected
    ]


def test_an_sft_file_from_other_prompt_templates_is_refused(mams, tmp_path):
    train, _ = mams
    example = next(sft_examples(train, train.task)) | {"prompt_hash": "0000000000000000"}
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(example) + "\n", encoding="utf-8")
    with pytest.raises(InputDataError, match="rebuild it with `topicsent sft-data`"):
        make_method("sft", base=BASE, sft_file=str(path), max_steps=1).fit(train)


@pytest.mark.llamacpp
def test_the_llama_cpp_adapter_changes_the_model_as_in_transformers(tmp_path):
    """A large random adapter moves transformers' next-token logits far; llama.cpp with the
    exported adapter must move the same way (query/key rows permuted for llama)."""
    import torch
    from llama_cpp import Llama

    model, tokenizer = load_causal_lm(resolve_base(BASE), lora_rank=8, seed=0)
    torch.manual_seed(1)
    for name, weights in model.named_parameters():
        if "lora_B" in name:
            weights.data.normal_(0, 0.3)
    ids = tokenizer("The food at this restaurant was really", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        tuned_logits = model.eval()(ids).logits[0, -1].numpy()
    gguf = resolve_base(BASE)
    adapter = export_lora_gguf(model, gguf.directory / gguf.gguf_file, tmp_path / "adapter.gguf")

    def llama_cpp_logits(lora: str | None) -> np.ndarray:
        llama = Llama(model_path=str(gguf.directory / gguf.gguf_file), lora_path=lora, logits_all=True, n_ctx=64, verbose=False)
        try:
            llama.eval(ids[0].tolist())
            return np.array(llama.scores[ids.shape[1] - 1])
        finally:
            llama.close()

    with_adapter = np.corrcoef(tuned_logits, llama_cpp_logits(str(adapter)))[0, 1]
    without = np.corrcoef(tuned_logits, llama_cpp_logits(None))[0, 1]
    assert with_adapter > 0.99 and without < 0.95, (with_adapter, without)


@pytest.mark.slow
def test_a_model_folder_base_trains_and_answers_through_transformers(mams, tmp_path):
    """A base given as a folder (here the dequantised SmolLM2) has no GGUF for llama.cpp:
    the tuned model answers in process through the transformers backend, saved and loaded too."""
    from topicsent.methods._finetuning import dequantised

    train, test = mams
    folder = str(dequantised(resolve_base(BASE)).directory)
    method = make_method("sft", base=folder, max_steps=2, eval_every=2, validation_reviews=2, learning_rate=1e-3).fit(train)
    assert method.adapter_gguf_ is None and len(method.training_report_.curve) == 2
    answers = method.predict_labelled(test[:2])
    assert all(a.status in ("ok", "unparsed") for a in answers) and answers[0].model == f"{folder}+lora"
    method.save(tmp_path / "sft")
    assert not (tmp_path / "sft" / "adapter" / "adapter.gguf").exists()
    loaded = BaseMethod.load(tmp_path / "sft")
    assert [a.aspects for a in loaded.predict_labelled(test[:2])] == [a.aspects for a in answers]
