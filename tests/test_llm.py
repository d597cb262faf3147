"""The `llm` method's correctness machinery on real reviews: answer checks, repair,
unparsed rows, failures that stay per row, cache, budget, retries, batching.

These tests script the backend's answers (recorded-answer style) so each path is hit
on purpose; tests/test_llm_server.py runs the same method against a real local model.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from typer.testing import CliRunner

from topicsent.data import Review, load_dataset
from topicsent.errors import AnswerError
from topicsent.interfaces.cli import app
from topicsent.llm import Backend, BackendError, ChatRequest, Limits, LlmClient, RateLimiter, RawCompletion
from topicsent.methods import BaseMethod, make_method
from topicsent.methods.llm import PromptSet, Question, answer_schema, gold_answer, locate, parse_answer, sft_examples
from topicsent.schema import Task


class ScriptedBackend(Backend):
    """Answers from a function of the request; counts calls. Priced like a hosted model."""

    name = "scripted"
    local = False

    def __init__(self, answer) -> None:
        super().__init__("gpt-4o-mini")
        self.answer = answer
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> RawCompletion:
        self.requests.append(request)
        text = self.answer(request, len(self.requests))
        if isinstance(text, Exception):
            raise text
        return RawCompletion(text, input_tokens=request.prompt_chars // 4, output_tokens=len(text) // 4)


@pytest.fixture
def llm_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPICSENT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def scripted(monkeypatch, answer) -> ScriptedBackend:
    backend = ScriptedBackend(answer)
    monkeypatch.setattr("topicsent.methods.llm._llm.make_backend", lambda *args, **kwargs: backend)
    return backend


def last_review(request: ChatRequest) -> str:
    return request.messages[-1][1] if request.messages[-1][0] == "user" else ""


def truthful(review_by_text):
    """A perfect model: answers each review with its gold labels (found by its text)."""

    def answer(request, _):
        for text, review in review_by_text.items():
            if text in last_review(request):
                question = Question(Task.ACSA, None, None)
                return json.dumps(gold_answer(review, question))
        return "{}"

    return answer


@pytest.fixture(scope="module")
def mams(task_data):
    train, test = task_data["acsa"]
    return train, test.with_reviews([r for r in test if r.aspects][:6])


# ----- the answer checks ---------------------------------------------------------------------


def _question(mams, given=None):
    return Question(Task.ACSA, mams[0].label_space, given)


def test_a_valid_answer_gets_spans_from_its_evidence(mams):
    review = Review("r", "The pasta was cold but the waiter was lovely.")
    answer = '```json\n{"aspects": [{"aspect": "food", "polarity": "negative", "evidence": "pasta was cold"},' \
             ' {"aspect": "staff", "polarity": "positive", "evidence": "the Waiter  was lovely"}]}\n```'  # fmt: skip
    parsed = parse_answer(answer, review, _question(mams))
    assert [(a.aspect, a.polarity) for a in parsed.aspects] == [("food", "negative"), ("staff", "positive")]
    assert [review.text[a.span.start : a.span.end] for a in parsed.aspects] == ["pasta was cold", "the waiter was lovely"]
    assert parsed.dropped_evidence == 0


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("no json here", "no JSON object"),
        ('{"aspects": [{"aspect": "food", "polarity": "positive",}]}', "not valid JSON"),
        ('{"aspects": [{"aspect": "parking", "polarity": "positive"}]}', "'parking' is not a category"),
        ('{"aspects": [{"aspect": "food", "polarity": "great"}]}', "polarity 'great'"),
        ('{"aspects": [{"aspect": "food"}]}', "does not follow the schema"),
        ('{"aspects": "food"}', "does not follow the schema"),
    ],
)
def test_invalid_answers_are_rejected_with_a_reason(mams, answer, problem):
    with pytest.raises(AnswerError, match=problem):
        parse_answer(answer, Review("r", "Nice food."), _question(mams))


def test_given_aspects_must_come_back_in_order(mams):
    review = mams[1][0]
    question = _question(mams, tuple(review.aspects))
    good = json.dumps(gold_answer(review, question))
    assert [a.aspect for a in parse_answer(good, review, question).aspects] == [a.name for a in review.aspects]
    extra = {"aspect": "x", "polarity": "positive"}
    reversed_answer = json.dumps({"aspects": [*gold_answer(review, question)["aspects"][::-1], extra]})
    with pytest.raises(AnswerError, match="exactly these aspects"):
        parse_answer(reversed_answer, review, question)


def test_made_up_evidence_is_dropped_not_kept(mams):
    review = Review("r", "Nice food.")
    parsed = parse_answer(
        '{"aspects": [{"aspect": "food", "polarity": "positive", "evidence": "delicious"}]}', review, _question(mams)
    )
    assert parsed.aspects[0].evidence is None and parsed.aspects[0].span is None and parsed.dropped_evidence == 1


def test_terms_must_occur_in_the_review(task_data):
    space = task_data["atsa"][0].label_space
    review = Review("r", "The sushi was fresh.")
    parsed = parse_answer('{"aspects": [{"aspect": "Sushi", "polarity": "positive"}]}', review, Question(Task.ATSA, space))
    assert parsed.aspects[0].span.start == 4 and parsed.aspects[0].evidence == "sushi"
    with pytest.raises(AnswerError, match="does not occur"):
        parse_answer('{"aspects": [{"aspect": "ramen", "polarity": "positive"}]}', review, Question(Task.ATSA, space))


def test_rating_outside_the_scale_is_rejected(task_data):
    space = task_data["rating"][0].label_space
    assert parse_answer('{"rating": 4}', Review("r", "ok"), Question(Task.RATING, space)).rating == 4.0
    with pytest.raises(AnswerError, match="from 1 to 5"):
        parse_answer('{"rating": 9}', Review("r", "ok"), Question(Task.RATING, space))


def test_schema_carries_the_taxonomy_and_given_aspects(mams):
    review = mams[1][0]
    free = answer_schema(_question(mams))
    assert free["properties"]["aspects"]["items"]["properties"]["aspect"]["enum"] == list(mams[0].label_space.categories)
    given = answer_schema(_question(mams, tuple(review.aspects)))["properties"]["aspects"]
    assert [item["properties"]["aspect"]["enum"] for item in given["prefixItems"]] == [[a.name] for a in review.aspects]
    assert given["minItems"] == given["maxItems"] == len(review.aspects)


def test_locate_ignores_case_and_spacing():
    assert locate("GREAT   food", "Really great food here").start == 7
    assert locate("not there", "Really great food here") is None


def test_korean_prompts_render_with_the_rating_scale(korean_ratings):
    train, _ = korean_ratings
    prompts = PromptSet("ko")
    system = prompts.system(Question(Task.RATING, train.label_space), batch=False)
    assert "1부터 10까지" in system and '{"rating": <정수>, "confidence": <0~1>}' in system
    assert prompts.hash != PromptSet("en").hash


def test_prompt_hashes_cover_only_their_own_templates(monkeypatch):
    """Editing the topic-naming prompt keeps every review prompt's hash (cache keys and
    sft_file checks); editing the review prompt changes it but not the naming one's."""
    from topicsent.llm import _templates
    from topicsent.topics import naming_prompt_hash

    before = {lang: (PromptSet(lang).hash, naming_prompt_hash(lang)) for lang in ("en", "ko")}
    original = _templates.template_text

    def edited(name):
        def text(package, template, language):
            return original(package, template, language) + (" edited" if template == name else "")

        return text

    for name, review_changes, naming_changes in (("topic", False, True), ("system", True, False), ("repair", True, True)):
        monkeypatch.setattr(_templates, "template_text", edited(name))
        _templates.templates_hash.cache_clear()
        for lang, (review, naming) in before.items():
            assert (PromptSet(lang).hash != review, naming_prompt_hash(lang) != naming) == (review_changes, naming_changes)
    monkeypatch.setattr(_templates, "template_text", original)
    _templates.templates_hash.cache_clear()
    assert PromptSet("en").hash == before["en"][0]


# ----- the method: repair, unparsed, per-row failures, cache, budget, batching ---------------


def test_one_repair_turn_fixes_an_answer_and_unfixable_ones_are_unparsed(mams, llm_cache, monkeypatch):
    train, test = mams
    first, second = test[0], test[1]

    def answer(request, _):
        repairing = request.messages[-1][1].startswith("That answer cannot be used")
        if first.text in request.messages[1][1]:  # invalid first, fixed when told why
            return (
                json.dumps(gold_answer(first, _question(mams)))
                if repairing
                else '{"aspects": [{"aspect": "wifi", "polarity": "positive"}]}'
            )
        return "I think it is positive."  # never valid

    backend = scripted(monkeypatch, answer)
    method = make_method("llm", backend="scripted", model="gpt-4o-mini").fit(train)
    fixed, broken = method.predict([first.text_only(), second.text_only()])
    assert fixed.status == "ok" and [a.aspect for a in fixed.aspects] == [a.name for a in first.aspects]
    assert "'wifi' is not a category" in backend.requests[1].messages[-1][1]  # the repair turn names the problem
    assert broken.status == "unparsed" and broken.raw == "I think it is positive." and not broken.aspects
    assert "invalid after one repair" in broken.status_reason and broken.overall.polarity is None
    assert len(backend.requests) == 4 and method.run_report()["unparsed"] == 1


def test_a_failing_row_never_aborts_the_batch(mams, llm_cache, monkeypatch):
    train, test = mams
    poison = test[2].text

    def answer(request, _):
        if poison in request.messages[-1][1]:
            return BackendError("HTTP 400: bad request", retryable=False, status=400)
        return truthful({r.text: r for r in test})(request, _)

    scripted(monkeypatch, answer)
    analyses = make_method("llm", backend="scripted", model="gpt-4o-mini").fit(train).predict(test.text_only())
    assert [a.status for a in analyses] == ["ok", "ok", "error", "ok", "ok", "ok"]
    assert "HTTP 400" in analyses[2].status_reason
    assert [sorted(a.aspect for a in x.aspects) for x in analyses if x.status == "ok"] == [
        sorted(a.name for a in r.aspects) for i, r in enumerate(test) if i != 2
    ]


def test_second_identical_run_is_served_from_the_cache(mams, llm_cache, monkeypatch):
    train, test = mams
    backend = scripted(monkeypatch, truthful({r.text: r for r in test}))
    method = make_method("llm", backend="scripted", model="gpt-4o-mini", strategy="few-shot", k=2).fit(train)
    first = method.predict(test.text_only())
    calls = len(backend.requests)
    again = make_method("llm", backend="scripted", model="gpt-4o-mini", strategy="few-shot", k=2).fit(train)
    second = again.predict(test.text_only())
    assert calls == len(test) and len(backend.requests) == calls, "the second run made backend calls"
    assert [a.model_dump(exclude={"usage"}) for a in first] == [a.model_dump(exclude={"usage"}) for a in second]
    assert all(a.usage.cache_hit for a in second) and again.run_report()["cache_hits"] == len(test)
    assert (llm_cache / "llm.sqlite").is_file()


def test_cost_budget_stops_cleanly(mams, llm_cache, monkeypatch):
    train, test = mams
    scripted(monkeypatch, truthful({r.text: r for r in test}))
    method = make_method("llm", backend="scripted", model="gpt-4o-mini", max_cost=0.0004, max_concurrency=1).fit(train)
    analyses = method.predict(test.text_only())
    report = method.run_report()
    assert report["cost_usd"] <= 0.0004
    statuses = [a.status for a in analyses]
    assert "ok" in statuses and "error" in statuses and statuses.index("error") > 0
    assert all("budget" in a.status_reason for a in analyses if a.status == "error")
    assert all(not a.aspects for a in analyses if a.status == "error")


def test_retries_on_rate_limits_then_succeeds(mams, llm_cache, monkeypatch):
    train, test = mams

    def answer(request, count):
        if count <= 2:
            return BackendError("HTTP 429: slow down", retryable=True, retry_after=0.05, status=429)
        return truthful({r.text: r for r in test})(request, count)

    backend = scripted(monkeypatch, answer)
    method = make_method("llm", backend="scripted", model="gpt-4o-mini").fit(train)
    [analysis] = method.predict([test[0].text_only()])
    assert analysis.status == "ok" and method.run_report()["retries"] == 2 and len(backend.requests) == 3


def test_batched_prompts_give_per_review_results(mams, llm_cache, monkeypatch):
    train, test = mams
    by_text = {r.text: r for r in test}

    def answer(request, _):
        if request.schema["properties"].get("reviews"):  # a batch: answer all but the second
            prompt = request.messages[-1][1]
            items = [
                {"review": i} | gold_answer(r, _question(mams))
                for i, r in enumerate(sorted((r for r in test if r.text in prompt), key=lambda r: prompt.index(r.text)), 1)
            ]
            return json.dumps({"reviews": [item for item in items if item["review"] != 2]})
        return truthful(by_text)(request, _)

    backend = scripted(monkeypatch, answer)
    method = make_method("llm", backend="scripted", model="gpt-4o-mini", reviews_per_prompt=3).fit(train)
    analyses = method.predict(test.text_only())
    assert all(a.status == "ok" for a in analyses)
    assert [sorted(a.aspect for a in x.aspects) for x in analyses] == [sorted(a.name for a in r.aspects) for r in test]
    assert len(backend.requests) == 2 + 2  # two batches of three, each missing one review asked again alone


def test_rate_limiter_spaces_requests():
    async def run() -> float:
        limiter = RateLimiter(requests_per_minute=2, tokens_per_minute=None, window=0.4)
        began = time.perf_counter()
        for _ in range(3):
            await limiter.acquire(10)
        return time.perf_counter() - began

    assert 0.35 <= asyncio.run(run()) < 2.0


def test_budget_needs_a_known_price(monkeypatch):
    backend = ScriptedBackend(lambda *_: "{}")
    backend.model = "some-unpriced-model"
    with pytest.raises(Exception, match="no price known"):
        LlmClient(backend, store=None, limits=Limits(max_cost=1.0))


def test_few_shot_examples_are_stratified_and_saved(mams, llm_cache, monkeypatch, tmp_path):
    train, test = mams
    backend = scripted(monkeypatch, truthful({r.text: r for r in test}))
    method = make_method("llm", backend="scripted", model="gpt-4o-mini", strategy="few-shot", k=3).fit(train)
    kinds = {tuple(sorted({a.polarity for a in r.aspects})) for r in method.examples_}
    assert len(method.examples_) == 3 and len(kinds) == 3
    method.predict([test[0].text_only()])
    roles = [role for role, _ in backend.requests[0].messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user"]
    method.save(tmp_path / "m")
    loaded = BaseMethod.load(tmp_path / "m")
    assert [r.id for r in loaded.examples_] == [r.id for r in method.examples_]


def test_retrieval_shows_the_most_similar_labelled_reviews(mams, llm_cache, monkeypatch, tmp_path):
    train, _ = mams
    backend = scripted(monkeypatch, truthful({r.text: r for r in train}))
    method = make_method("llm", backend="scripted", model="gpt-4o-mini", strategy="retrieval", k=3).fit(train)
    probe = next(r for r in train if r.aspects and len(r.text) > 60)
    [analysis] = method.predict([probe.text_only()])
    shown = [content for role, content in backend.requests[0].messages if role == "user"][:-1]
    assert len(shown) == 3 and probe.text in shown[-1], "the review itself is the nearest example, shown last"
    assert analysis.status == "ok"
    method.save(tmp_path / "m")
    assert (tmp_path / "m" / "examples.faiss").is_file()
    loaded = BaseMethod.load(tmp_path / "m")
    assert loaded.index_.nearest([probe.text], 3) == method.index_.nearest([probe.text], 3)


def test_korean_reviews_get_korean_prompts(korean_ratings, llm_cache, monkeypatch):
    train, test = korean_ratings
    backend = scripted(monkeypatch, lambda request, _: '{"rating": 8}')
    analyses = make_method("llm", backend="scripted", model="gpt-4o-mini").fit(train).predict(test.text_only()[:2])
    system, user = backend.requests[0].messages[0][1], backend.requests[0].messages[-1][1]
    assert "평점" in system and user.startswith("리뷰:")
    assert [(a.status, a.overall.rating, a.overall.polarity) for a in analyses] == [("ok", 8.0, "positive")] * 2


def test_transformers_backend_answers_from_a_local_model(task_data, llm_cache):
    """The unconstrained backend (a GGUF dequantised by transformers): answers are checked,
    and a reply that stays invalid after the repair turn is `unparsed`, never guessed."""
    train, test = task_data["rating"]
    method = make_method("llm", backend="transformers", model="smollm2-135m-instruct", max_tokens=40).fit(train)
    analyses = method.predict(test.text_only()[:2])
    report = method.run_report()
    assert report["calls"] >= 2 and report["input_tokens"] > 0 and report["output_tokens"] > 0
    for analysis in analyses:
        assert analysis.status in ("ok", "unparsed")
        if analysis.status == "ok":
            assert 1 <= analysis.overall.rating <= 5 and analysis.model == "transformers:smollm2-135m-instruct"
        else:
            assert analysis.raw is not None and analysis.overall.rating is None


def test_sft_data_is_what_the_parser_accepts(tmp_path, mams, korean_ratings):
    """Instruction-tuning targets, built from real labels with the method's own templates,
    parse back to the gold labels (so a tuned model that imitates them is read correctly)."""
    out = tmp_path / "sft.jsonl"
    result = CliRunner().invoke(app, ["sft-data", "--dataset", "mams-acsa", "--split", "validation", "-o", str(out)])
    assert result.exit_code == 0, result.output
    examples = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    validation = {r.id: r for r in load_dataset("mams-acsa").validation}
    assert len(examples) == 2 * len(validation) and {e["form"] for e in examples} == {"detect", "given"}
    for example in examples[:50]:
        review = validation[example["review_id"]]
        roles = [m["role"] for m in example["messages"]]
        assert roles == ["system", "user", "assistant"] and review.text in example["messages"][1]["content"]
        given = tuple(review.aspects) if example["form"] == "given" else None
        question = Question(Task.ACSA, mams[0].label_space, given, evidence=False)
        parsed = parse_answer(example["messages"][-1]["content"], review, question)
        assert [(a.aspect, a.polarity) for a in parsed.aspects] == [(a.name, a.polarity) for a in review.aspects]

    train, _ = korean_ratings
    [korean] = list(sft_examples(train[:1], Task.RATING))
    assert "평점" in korean["messages"][0]["content"]
    assert json.loads(korean["messages"][-1]["content"])["rating"] == train[0].rating


@pytest.fixture(scope="module")
def mams_taxonomy(mams):
    """Three topics made from real MAMS sentences, named by keywords as discovery does."""
    from topicsent.topics import Taxonomy, Topic

    train, _ = mams
    topics = []
    themes = [
        (["waiter", "staff", "service"], "waiter"),
        (["pasta", "sauce", "dish"], "pasta"),
        (["price", "expensive", "cheap"], "price"),
    ]
    for topic_id, (keywords, word) in enumerate(themes):
        examples = [r.text for r in train if word in r.text.lower()][:3]
        topics.append(Topic(id=topic_id, name="_".join(keywords), keywords=keywords, size=30 - topic_id, examples=examples))
    return Taxonomy(language="en", topics=topics)


def test_topic_naming_checks_names_and_keeps_keywords_when_the_llm_fails(mams_taxonomy, llm_cache, monkeypatch):
    from topicsent.topics import name_topics

    def answer(request, count):
        prompt = request.messages[0][1]
        if "waiter" in prompt.split("\n")[0]:
            return '{"name": "service", "description": "How the staff treat guests."}'
        if "pasta" in prompt.split("\n")[0]:  # first a clash with the name taken, then a fix
            repairing = len(request.messages) > 1
            return '{"name": "pasta dishes", "description": "Pasta."}' if repairing else '{"name": "Service", "description": "x"}'
        return '{"name": "what people say about how much everything here costs", "description": "too long"}'

    backend = ScriptedBackend(answer)
    monkeypatch.setattr("topicsent.topics._naming.make_backend", lambda *args, **kwargs: backend)
    named, outcomes = name_topics(mams_taxonomy, "scripted:gpt-4o-mini")
    assert named.categories == ("service", "pasta dishes", "price_expensive_cheap")
    assert [t.named_by for t in named.topics][:2] == ["llm", "llm"] and named.topics[2].named_by.startswith("keywords: ")
    assert "already used" in backend.requests[2].messages[-1][1] and named.topics[0].description == "How the staff treat guests."
    assert [o.topic_id for o in outcomes] == [0, 1, 2]  # biggest topic first


@pytest.mark.llamacpp
def test_topic_naming_with_a_real_local_model(mams_taxonomy, llm_cache):
    from topicsent.topics import name_topics

    named, outcomes = name_topics(mams_taxonomy, "llamacpp:smollm2-135m-instruct")
    assert len(named.topics) == 3 and len(set(named.categories)) == 3
    assert all(t.named_by == "llm" or t.named_by.startswith("keywords: ") for t in named.topics)
    assert any(o.named_by == "llm" for o in outcomes)
    for topic in named.topics:
        if topic.named_by == "llm":
            assert 1 <= len(topic.name.split()) <= 4
