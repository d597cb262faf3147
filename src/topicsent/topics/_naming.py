"""LLM-named topics: a short name and a description for each discovered topic.

Discovery names a topic by its top keywords (``staff_waiter_service``); an LLM, shown
the keywords and the reviews closest to the topic's centre, can say what it is about
("service speed"). The answer is checked like every LLM answer: a JSON object with a
name of 1-4 words not used by another topic, one repair turn quoting the problem,
and a topic whose answer stays invalid keeps its keyword name, marked as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from topicsent.llm import (
    REPAIR_TEMPLATE,
    Backend,
    BackendError,
    ChatRequest,
    LlmClient,
    LlmStore,
    ask_checked,
    json_object,
    make_backend,
    parse_backend_spec,
    prompt_language,
    repair_message,
    run_sync,
    template,
    templates_hash,
)
from topicsent.topics._taxonomy import Taxonomy, Topic

#: The files the naming prompt is rendered from: its hash covers only them.
TEMPLATES = (("topicsent.topics", "topic"), REPAIR_TEMPLATE)

MAX_NAME_WORDS = 4
MAX_NAME_CHARS = 40
MAX_EXAMPLE_CHARS = 500  # a quarter of the review prompt's max_review_chars
NAME_PATTERN = f"^[^ ]+( [^ ]+){{0,{MAX_NAME_WORDS - 1}}}$"  # 1 to MAX_NAME_WORDS words
NAME_SCHEMA = {
    "type": "object",
    "properties": {
        # 1-4 words: backends that constrain decoding (llama.cpp grammars, OpenAI strict schemas) then cannot
        # produce a longer name; the check below still holds for backends that do not
        "name": {"type": "string", "maxLength": MAX_NAME_CHARS, "pattern": NAME_PATTERN},
        "description": {"type": "string"},
    },
    "required": ["name", "description"],
}


class _Named(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    description: str = ""


@dataclass(frozen=True)
class NamingOutcome:
    topic_id: int
    name: str
    named_by: str  # "llm", or "keywords: <why the LLM's answer was not used>"


def _checked_name(text: str, taken: set[str]) -> _Named:
    """The validated answer; ``taken``: names of other topics (case-insensitive)."""
    try:
        named = _Named.model_validate(json_object(text))
    except (ValueError, ValidationError) as error:
        raise ValueError(f"the answer is not a JSON object with a short 'name' and a 'description' ({error})") from None
    name = " ".join(named.name.split())
    if len(name.split()) > MAX_NAME_WORDS:
        raise ValueError(f"the name {name!r} has more than {MAX_NAME_WORDS} words")
    if name.lower() in {t.lower() for t in taken}:
        raise ValueError(f"the name {name!r} is already used for another topic")
    return named.model_copy(update={"name": name})


def naming_prompt(language: str, keywords: Sequence[str], examples: Sequence[str], taken: Sequence[str]) -> str:
    """Ask for the name and description of one discovered topic (examples cut to 500 characters)."""
    shown = [example[:MAX_EXAMPLE_CHARS] for example in examples]
    return template("topicsent.topics", "topic", language).render(keywords=keywords, examples=shown, taken=taken).strip()


def naming_prompt_hash(language: str) -> str:
    """The version of the naming prompt (its template files), part of its cache keys."""
    return templates_hash(language, *TEMPLATES)


async def _name_one(
    client: LlmClient, language: str, topic: Topic, taken: set[str], reserved: set[str]
) -> tuple[_Named | None, str]:
    """``taken``: names the LLM gave other topics (shown to it); ``reserved``: also the
    keyword names of topics not named yet (a clash would make the taxonomy invalid)."""
    messages = [{"role": "user", "content": naming_prompt(language, topic.keywords[:10], topic.examples[:3], sorted(taken))}]
    try:
        checked = await ask_checked(
            client, messages, lambda turns: ChatRequest.of(turns, schema=NAME_SCHEMA, max_tokens=96),
            lambda text: _checked_name(text, reserved), lambda problem: repair_message(problem, language),
            naming_prompt_hash(language),
        )  # fmt: skip
    except BackendError as error:
        return None, f"keywords: {error}"
    return (checked.value, "llm") if checked.value is not None else (None, f"keywords: {checked.problem}")


async def _name_all(backend: Backend, taxonomy: Taxonomy, cache: bool) -> list[tuple[Topic, _Named | None, str]]:
    language = prompt_language(taxonomy.language)
    client = LlmClient(backend, store=LlmStore() if cache else None)
    taken: set[str] = set()
    final = {topic.id: topic.name for topic in taxonomy.topics}
    results = []
    try:
        for topic in sorted(taxonomy.topics, key=lambda t: -t.size):  # the biggest topics choose first
            reserved = {name for topic_id, name in final.items() if topic_id != topic.id}
            named, how = await _name_one(client, language, topic, taken, reserved)
            if named is not None:
                taken.add(named.name)
                final[topic.id] = named.name
            results.append((topic, named, how))
    finally:
        await backend.aclose()
    return results


def name_topics(taxonomy: Taxonomy, backend_spec: str, *, cache: bool = True, **options) -> tuple[Taxonomy, list[NamingOutcome]]:
    """The taxonomy with LLM names and descriptions (``backend_spec`` is ``BACKEND:MODEL``),
    and how each topic got its name."""
    backend = make_backend(*parse_backend_spec(backend_spec), **options)
    results = run_sync(_name_all(backend, taxonomy, cache))
    named = {topic.id: answer for topic, answer, _ in results if answer is not None}
    how_named = {topic.id: how for topic, _, how in results}
    topics = [
        t.model_copy(update={"name": named[t.id].name, "description": named[t.id].description or None, "named_by": "llm"})
        if t.id in named
        else t.model_copy(update={"named_by": how_named[t.id]})
        for t in taxonomy.topics
    ]
    renamed = Taxonomy.model_validate(taxonomy.model_dump() | {"topics": [t.model_dump() for t in topics]})
    outcomes = [
        NamingOutcome(topic.id, named[topic.id].name if topic.id in named else topic.name, how) for topic, _, how in results
    ]
    return renamed, outcomes
