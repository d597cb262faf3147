import pytest

from topicsent.errors import InvalidParameterError, UnknownNameError
from topicsent.methods import make_method, parse_method_spec, split_method_specs


def test_method_specs_fix_parameters():
    assert parse_method_spec("tfidf-lr") == ("tfidf-lr", {})
    assert parse_method_spec(" embed-head[design=pair, epochs=10] ") == ("embed-head", {"design": "pair", "epochs": 10})
    assert parse_method_spec("tfidf-lr[C=0.5,analyzer=char]") == ("tfidf-lr", {"C": 0.5, "analyzer": "char"})
    assert split_method_specs("majority, tfidf-lr[C=1,analyzer=char],embed-head") == [
        "majority",
        "tfidf-lr[C=1,analyzer=char]",
        "embed-head",
    ]


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("nope", UnknownNameError),
        ("tfidf-lr[C]", InvalidParameterError),
        ("tfidf-lr[gamma=1]", InvalidParameterError),
        ("a b", InvalidParameterError),
    ],
)
def test_bad_specs_fail_before_any_work(spec, error):
    with pytest.raises(error):
        parse_method_spec(spec)


def test_make_method_rejects_unknown_parameters():
    with pytest.raises(InvalidParameterError, match="valid: C, analyzer"):
        make_method("tfidf-lr", gamma=1)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("tfidf-lr", {"C": 0}, "'C' parameter of TfidfLRMethod must be a finite float > 0. Got 0 instead."),
        ("tfidf-lr", {"analyzer": "bigram"}, "must be one of ('auto', 'word', 'char', 'morph', 'char+morph')"),
        ("embed-head", {"epochs": 0}, "'epochs' parameter of EmbedHeadMethod must be an int >= 1"),
        ("embed-head", {"design": "mean"}, "must be one of ('attention', 'pair')"),
    ],
)
def test_parameters_are_validated_in_fit(name, params, message):
    from topicsent.data import Review, ReviewSet
    from topicsent.schema import Task

    method = make_method(name, **params)  # the constructor only stores
    with pytest.raises(InvalidParameterError) as error:
        method.fit(ReviewSet((Review("1", "fine", rating=5),)), Task.RATING)
    assert message in str(error.value)


def test_nested_options_stay_one_spec():
    """``backend_options={"a": 1, "b": 2}`` was split at its inner comma into two specs."""
    text = 'llm[backend_options={"a": 1, "b": 2},k=3], tfidf-lr[analyzer=char], stack[members=tfidf-lr+majority]'
    assert split_method_specs(text) == [
        'llm[backend_options={"a": 1, "b": 2},k=3]',
        "tfidf-lr[analyzer=char]",
        "stack[members=tfidf-lr+majority]",
    ]
    assert parse_method_spec('llm[backend_options={"a": 1, "b": [2, 3]},k=3]') == (
        "llm", {"backend_options": {"a": 1, "b": [2, 3]}, "k": 3},
    )  # fmt: skip
    assert split_method_specs('llm[base_url="http://h:1/v1,x"],majority') == ['llm[base_url="http://h:1/v1,x"]', "majority"]


def test_specs_parse_once_into_method_objects_and_back():
    from topicsent.methods import MajorityMethod, TfidfLRMethod, method_spec, parse_methods

    methods = parse_methods("majority, tfidf-lr[C=0.5,analyzer=char]")
    assert [type(m) for m in methods] == [MajorityMethod, TfidfLRMethod]
    assert methods[1].get_params() == TfidfLRMethod(C=0.5, analyzer="char").get_params()
    assert [method_spec(m) for m in methods] == ["majority", "tfidf-lr[C=0.5,analyzer=char]"]
    seeded = parse_methods("tfidf-lr,tfidf-lr[random_state=1],majority", random_state=3)
    assert [m.get_params()["random_state"] for m in seeded] == [3, 1, 3]  # a seed the spec sets is kept


def test_nested_method_objects_are_written_as_the_spec_text_their_class_reads():
    from topicsent.methods import CascadeMethod, MajorityMethod, TfidfLRMethod, method_spec, spec_params
    from topicsent.methods._registry import seeded_method

    first = TfidfLRMethod(C=0.5)
    cascade = make_method("cascade", stages=[first, MajorityMethod()], random_state=3)
    assert spec_params(cascade)["stages"] == "tfidf-lr[C=0.5]>majority"  # JSON, and what `stages` accepts
    assert cascade.stage_specs() == ["tfidf-lr[C=0.5]", "majority"]
    name, params = parse_method_spec(method_spec(cascade))
    assert (name, params) == ("cascade", {"stages": "tfidf-lr[C=0.5]>majority", "random_state": 3})
    assert make_method(name, **params).stage_specs() == cascade.stage_specs()
    stack = make_method("stack", members=["tfidf-lr[analyzer=char]", first])  # specs and objects mixed
    assert spec_params(stack)["members"] == "tfidf-lr[analyzer=char]+tfidf-lr[C=0.5]"
    assert isinstance(cascade.clone().stages[0], TfidfLRMethod)  # get_params/clone keep the objects
    stage = seeded_method(first, 7)
    assert stage is not first and stage.get_params() == first.clone(random_state=7).get_params()
    assert seeded_method(TfidfLRMethod(random_state=1), 7).random_state == 1  # a seed the object sets is kept
    for stages, message in [(3, "spec text or a list of methods"), ([first], "at least two stages"), ([first, 3], "neither")]:
        with pytest.raises(InvalidParameterError, match=message):
            CascadeMethod(stages=stages).stage_specs()
