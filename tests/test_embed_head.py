"""embed-head on real data: it learns (beats majority on held-out reviews), both aspect
designs work, and the embedding cache spares re-encoding."""

import pytest

from topicsent.data import load_dataset
from topicsent.encoders import EmbeddingCache, TransformerEncoder
from topicsent.errors import InvalidParameterError, ModelFileError
from topicsent.eval import score
from topicsent.methods import make_method


@pytest.fixture(scope="module")
def mams_sample():
    splits = load_dataset("mams-acsa")
    return splits.train.sample(600, seed=5), splits.test.sample(120, seed=5)


@pytest.mark.parametrize(
    ("design", "encoder"),
    [
        ("attention", "all-MiniLM-L6-v2"),
        # token vectors from the rebuilt e5 (the Korean-capable encoder); ~1 min: 12 layers
        pytest.param("attention", "multilingual-e5-small", marks=pytest.mark.slow),
        pytest.param("pair", "all-MiniLM-L6-v2", marks=pytest.mark.slow),  # pair: 8 passes per review
    ],
)
def test_acsa_beats_majority_on_held_out_reviews(mams_sample, design, encoder):
    train, test = mams_sample
    majority, _, _ = score(make_method("majority").fit(train), test)
    method = make_method("embed-head", design=design, encoder=encoder, epochs=15).fit(train)
    learned, statuses, _ = score(method, test)
    assert isinstance(method.encoder_, TransformerEncoder)
    assert statuses["ok"] == len(test)
    assert learned["polarity_accuracy"] >= majority["polarity_accuracy"] + 0.08
    assert learned["detection_f1"] >= majority["detection_f1"] + 0.1


def test_rating_beats_majority_on_held_out_reviews():
    splits = load_dataset("womens-clothing")
    train, test = splits.train.sample(800, seed=5), splits.test.sample(200, seed=5)
    majority, _, _ = score(make_method("majority").fit(train), test)
    learned, _, _ = score(make_method("embed-head", rating_model="regress").fit(train), test)
    assert learned["qwk"] >= majority["qwk"] + 0.3 and learned["mae"] < majority["mae"]


def test_encoder_reads_back_from_the_cache_without_the_model(tmp_path):
    texts = ["The soup was cold.", "Lovely staff!", "The soup was cold."]
    encoder = TransformerEncoder("all-MiniLM-L6-v2")
    first = encoder.sentences(texts)
    assert first.shape == (3, 384) and (first[0] == first[2]).all()
    again = TransformerEncoder("all-MiniLM-L6-v2")
    assert (again.sentences(texts) == first).all() and again._model is None  # served from disk, model never loaded
    cache = EmbeddingCache()
    assert cache.path.is_file() and cache.path.parent.name.startswith("embedding-cache")


def test_encoder_paths_are_validated(tmp_path):
    with pytest.raises(InvalidParameterError, match="neither a packaged encoder"):
        TransformerEncoder(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelFileError, match="only safetensors"):
        TransformerEncoder(str(tmp_path))


def test_a_local_encoder_directory_works(tmp_path, mams_sample):
    """A user's own checkpoint directory (here a copy of the packaged one) is used by path."""
    import shutil

    from topicsent.encoders import resolve_encoder

    local = tmp_path / "my-encoder"
    shutil.copytree(resolve_encoder("all-MiniLM-L6-v2"), local)
    train, test = mams_sample
    method = make_method("embed-head", encoder=str(local), epochs=2).fit(train[:100])
    analyses = method.predict(test[:5].text_only())
    assert all(a.status == "ok" and a.model == str(local) for a in analyses)


def test_korean_ratings_with_a_multilingual_encoder():
    splits = load_dataset("nsmc-binary")
    train, test = splits.train.sample(800, seed=5), splits.test.sample(200, seed=5)
    method = make_method("embed-head", encoder="multilingual-e5-small", C=10.0).fit(train)
    learned, _, _ = score(method, test)
    majority, _, _ = score(make_method("majority").fit(train), test)
    assert method.model_name == "multilingual-e5-small"
    assert learned["accuracy"] >= majority["accuracy"] + 0.03  # measured: 0.81 vs 0.765
    assert learned["macro_f1"] >= majority["macro_f1"] + 0.2  # measured: 0.70 vs 0.43


def test_sentence_only_encoders_need_the_pair_design(mams_sample):
    train, _ = mams_sample
    with pytest.raises(InvalidParameterError, match="use design='pair'"):
        make_method("embed-head", encoder="multilingual-use").fit(train[:20])


def test_korean_training_data_gets_the_multilingual_encoder_by_default():
    splits = load_dataset("nsmc-binary")
    train, test = splits.train.sample(400, seed=6), splits.test.sample(100, seed=6)
    method = make_method("embed-head", C=10.0).fit(train)
    assert method.model_name == "multilingual-e5-small"
    assert all(a.model == "multilingual-e5-small" for a in method.predict(test.text_only()))
    learned, _, _ = score(method, test)
    majority, _, _ = score(make_method("majority").fit(train), test)
    assert learned["macro_f1"] >= majority["macro_f1"] + 0.2
