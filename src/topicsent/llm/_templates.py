"""Prompt template files (Jinja2, one per language) and their version hashes.

A caller's templates live beside its code (``topicsent/methods/llm/prompts/``,
``topicsent/topics/prompts/``); this module only loads and hashes them. A prompt's hash
covers exactly the files it is rendered from, so editing the topic-naming prompt leaves
the review prompts' cache keys (and ``sft_file`` checks) alone. The repair turn of
:func:`topicsent.llm.ask_checked` is shared by every caller and lives here.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from topicsent._extras import require
from topicsent.errors import InvalidParameterError

LANGUAGES = ("en", "ko")
#: (package, template name) of the repair turn every checked answer may take.
REPAIR = ("topicsent.llm", "repair")


def prompt_language(language: str | None) -> str:
    """The template language for reviews in ``language`` (English for languages without templates)."""
    return language if language in LANGUAGES else "en"


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise InvalidParameterError(f"no prompt templates for language {language!r}; available: {', '.join(LANGUAGES)}")
    return language


@cache
def _environment():
    jinja2 = require("jinja2", "llm")
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def template_text(package: str, name: str, language: str) -> str:
    """The file ``prompts/{name}.{language}.j2`` of ``package``."""
    path = resources.files(package).joinpath("prompts", f"{name}.{check_language(language)}.j2")
    return path.read_text(encoding="utf-8")


@cache
def template(package: str, name: str, language: str):
    """The compiled template (undefined variables are errors, nothing is escaped)."""
    return _environment().from_string(template_text(package, name, language))


@cache
def templates_hash(language: str, *sources: tuple[str, str]) -> str:
    """sha256 (first 16 hex digits) of the template files ``sources`` ((package, name)
    pairs, in order): the version of a prompt built from exactly those files."""
    digest = hashlib.sha256()
    for package, name in sources:
        digest.update(template_text(package, name, language).encode())
    return digest.hexdigest()[:16]


def repair_message(problem: str, language: str) -> str:
    """The turn that asks again after an unusable answer, quoting what was wrong."""
    return template(*REPAIR, language).render(problem=problem).strip()
