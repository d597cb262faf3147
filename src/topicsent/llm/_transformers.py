"""A local Hugging Face causal LM (a model directory, or a GGUF file transformers can
dequantise), optionally with a LoRA adapter directory, e.g. one trained by ``sft``.

Nothing is fetched from a hub (``HF_HUB_OFFLINE``). Decoding is greedy (sampled,
seeded, when ``temperature > 0``) and not constrained, so this backend relies on the
answer checks and the repair turn; it is the backend for small models and adapters,
not for speed.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from topicsent.encoders._transformer import require_safetensors
from topicsent.errors import InvalidParameterError
from topicsent.llm._backend import Backend, ChatRequest, RawCompletion, file_id
from topicsent.llm._packaged import PACKAGED_LLMS, packaged_model_path


def _source(model: str) -> tuple[Path, str | None]:
    """(directory, gguf file name or None) for a model directory, GGUF path or packaged name."""
    path = packaged_model_path(model) if model in PACKAGED_LLMS else Path(model).expanduser()
    if path.is_dir():
        return path, None
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path.parent, path.name
    raise InvalidParameterError(
        f"{model!r} is not a model directory, a .gguf file or a packaged model ({', '.join(PACKAGED_LLMS)})"
    )


class TransformersBackend(Backend):
    name = "transformers"
    parallel_requests = 1

    def __init__(self, model: str, *, adapter: str | None = None) -> None:
        super().__init__(model)
        self.directory, self.gguf_file = _source(model)
        self.adapter = Path(adapter).expanduser() if adapter else None
        if self.adapter is not None and not (self.adapter / "adapter_config.json").is_file():
            raise InvalidParameterError(f"{adapter}: not a LoRA adapter directory (no adapter_config.json)")
        if self.gguf_file is None:
            require_safetensors(self.directory)
        if self.adapter is not None:
            require_safetensors(self.adapter)
        self._loaded = None
        self._identity: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def in_memory(cls, model: str, tokenizer, lm, *, identity: str) -> TransformersBackend:
        """A backend over a model already in memory (e.g. just tuned by ``sft``);
        ``identity`` names its weights in cache keys."""
        backend = cls(model)
        backend._loaded = (tokenizer, lm.eval())
        backend._identity = identity
        return backend

    @property
    def model_id(self) -> str:
        if self._identity:
            return f"{self.model}+{self._identity}"
        weights = file_id(self.directory / self.gguf_file) if self.gguf_file else str(self.directory.resolve())
        return weights + (f"+{file_id(self.adapter / 'adapter_config.json')}" if self.adapter else "")

    def _load(self):
        if self._loaded is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from topicsent.encoders._transformer import prepare_transformers

            prepare_transformers()
            tokenizer_options = {"gguf_file": self.gguf_file} if self.gguf_file else {}
            weights_options = tokenizer_options or {"use_safetensors": True}
            tokenizer = AutoTokenizer.from_pretrained(self.directory, **tokenizer_options)
            model = AutoModelForCausalLM.from_pretrained(self.directory, **weights_options)
            if self.adapter is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, self.adapter)
            self._loaded = (tokenizer, model.eval())
        return self._loaded

    def _complete(self, request: ChatRequest) -> RawCompletion:
        import torch

        with self._lock:
            tokenizer, model = self._load()
            prompt = tokenizer.apply_chat_template(
                request.message_dicts, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            sampling: dict = {"do_sample": False}
            if request.temperature > 0:
                sampling = {"do_sample": True, "temperature": request.temperature}
                torch.manual_seed(request.seed)
            with torch.inference_mode():
                output = model.generate(
                    **prompt, max_new_tokens=request.max_tokens, pad_token_id=tokenizer.eos_token_id, **sampling
                )
        new_tokens = output[0, prompt["input_ids"].shape[1] :]
        ended = len(new_tokens) < request.max_tokens or int(new_tokens[-1]) == tokenizer.eos_token_id
        return RawCompletion(
            text=tokenizer.decode(new_tokens, skip_special_tokens=True),
            input_tokens=int(prompt["input_ids"].shape[1]),
            output_tokens=len(new_tokens),
            finish_reason="stop" if ended else "length",  # generate() stops early only at the end-of-sequence token
        )

    async def complete(self, request: ChatRequest) -> RawCompletion:
        return await asyncio.to_thread(self._complete, request)
