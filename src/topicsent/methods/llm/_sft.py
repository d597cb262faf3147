"""A small instruction LLM tuned with LoRA on this task's own prompts, then asked zero-shot.

``fit`` turns the training reviews into chat examples with the `llm` method's own
templates (:func:`~topicsent.methods.llm._sft_data.sft_examples`: the exact prompt, the answer the
parser accepts), optionally adds examples from a JSONL file (e.g. labelled by a
bigger teacher with ``topicsent sft-data --teacher``), and trains LoRA adapters of a
small local decoder (SmolLM2-135M, Qwen2.5 0.5B; a GGUF is dequantised by
transformers). A seeded slice of the training reviews is held out: every
``eval_every`` steps the tuned model really answers them, and the adapters with the
best accuracy there are kept, so the curve (``training_report_``) is accuracy of
parsed answers, not a loss proxy. Prediction is the `llm` method's zero-shot path
(validation, repair turn, ``unparsed`` rows). A GGUF base answers through llama.cpp
with the adapter exported as a llama.cpp LoRA GGUF (:mod:`._lora_gguf`: ~50 tokens/s
and schema-constrained JSON, where the fp32 transformers model manages ~8); another
base answers through the in-process transformers backend. The adapter is saved in
``adapter/`` (peft safetensors, and ``adapter.gguf`` for llama.cpp) and also works with
the ``llm`` method's ``llamacpp`` (``{"lora": ...}``) or ``transformers``
(``{"adapter": ...}``) backends.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from topicsent._progress import progress_bar
from topicsent.data import ReviewSet
from topicsent.errors import InputDataError, InvalidParameterError
from topicsent.llm import Backend, LlamaCppBackend, TransformersBackend
from topicsent.methods._finetuning import base_licence, resolve_base
from topicsent.methods.llm._llm import LlmMethod
from topicsent.methods.llm._lora_gguf import export_lora_gguf
from topicsent.methods.llm._sft_data import FORMS, sft_examples
from topicsent.methods.llm._tuning import (
    ChatTokens,
    TuningReport,
    adapter_fingerprint,
    answer_loss,
    load_adapter,
    load_causal_lm,
    tokenize_chat,
    train_lora,
)
from topicsent.metrics import polarity_scores, rating_scores
from topicsent.schema import Task

ADAPTER_DIR = "adapter"
ADAPTER_GGUF = "adapter.gguf"
TUNING_FILE = "tuning.json"


class SftMethod(LlmMethod):
    """A small instruction LLM fine-tuned (LoRA) to answer this task's prompts.

    Parameters
    ----------
    base : str, default="smollm2-135m-instruct"
        A packaged instruction model (``topicsent models list``), a ``.gguf`` file or a
        local model directory with a chat template.
    lora_rank : int, default=8
        Rank of the adapters on the attention projections.
    max_steps : int, default=240
        Optimiser steps (batches); the examples are cycled as often as needed. On two
        cores a step of 4 MAMS examples takes ~11 s with SmolLM2-135M: the defaults train
        in ~45 minutes (plus ~2 s per held-out review at each curve point).
    train_batch_size : int, default=4
    learning_rate : float, default=3e-4
    max_length : int, default=512
        Tokens per example (prompt and answer); longer examples are left out and counted.
    form : {"both", "given", "detect"}, default="both"
        Aspect tasks: train to rate the aspects it is told (``given``), to find them itself
        (``detect``), or both (see ``sft-data``).
    sft_file : str, optional
        More examples, a JSONL of ``topicsent sft-data`` (e.g. teacher-labelled), trained on too.
    max_examples : int, optional
        Train on at most this many examples (seeded sample).
    validation_reviews : int, default=40
        Training reviews held out, answered every ``eval_every`` steps to pick the adapters.
    eval_every : int, default=60
    evidence, descriptions, temperature, max_tokens, max_review_chars, cache, random_state:
        As for ``llm``.
    """

    name = "sft"
    supported_tasks = frozenset({Task.ACSA, Task.ATSA, Task.RATING})
    batch_size = 16
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {
        "lora_rank": "count", "max_steps": "count", "train_batch_size": "count", "learning_rate": "positive",
        "max_length": "count", "validation_reviews": "count", "eval_every": "count", "max_tokens": "count",
        "max_review_chars": "count", "form": ("both", *FORMS),
    }  # fmt: skip

    # How the tuned model is asked: its own zero-shot prompt, in this process, one at a time.
    backend = "transformers"
    strategy = "zero-shot"
    base_url = None
    backend_options = None
    k = 0
    encoder = None
    pool_size = 0
    reviews_per_prompt = 1
    max_concurrency = 1
    requests_per_minute = None
    tokens_per_minute = None
    max_retries = 0
    max_cost = None

    def __init__(
        self,
        *,
        base: str = "smollm2-135m-instruct",
        lora_rank: int = 8,
        max_steps: int = 240,
        train_batch_size: int = 4,
        learning_rate: float = 3e-4,
        max_length: int = 512,
        form: str = "both",
        sft_file: str | None = None,
        max_examples: int | None = None,
        validation_reviews: int = 40,
        eval_every: int = 60,
        evidence: bool = False,
        descriptions: dict[str, str] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 256,
        max_review_chars: int = 1000,
        cache: bool = True,
        random_state: int = 0,
    ) -> None:
        self.base = base
        self.lora_rank = lora_rank
        self.max_steps = max_steps
        self.train_batch_size = train_batch_size
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.form = form
        self.sft_file = sft_file
        self.max_examples = max_examples
        self.validation_reviews = validation_reviews
        self.eval_every = eval_every
        self.evidence = evidence
        self.descriptions = descriptions
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_review_chars = max_review_chars
        self.cache = cache
        self.random_state = random_state

    @property
    def model(self) -> str:  # type: ignore[override]  (the `llm` parameter, fixed to the base here)
        return self.base

    @property
    def model_name(self) -> str:
        return f"{self.base}+lora"

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.sft_file is not None and not Path(self.sft_file).is_file():
            raise InvalidParameterError(f"sft_file {self.sft_file} does not exist")

    # ----- fit ---------------------------------------------------------------------------

    def _fit(self, reviews: ReviewSet) -> None:
        self.examples_, self.index_ = [], None
        self._reset_run_state()
        train, held = self._split(reviews)
        examples = self._chat_examples(train) + (self._file_examples() if self.sft_file else [])  # a bad file fails first
        if self.max_examples is not None and len(examples) > self.max_examples:
            examples = random.Random(self.random_state).sample(examples, self.max_examples)
        with progress_bar(f"{self.name}: load {self.base}", total=None):
            self.model_, self.tokenizer_ = load_causal_lm(
                resolve_base(self.base), lora_rank=self.lora_rank, seed=self.random_state
            )
        chats = self._tokenized(examples)
        self.too_long_examples_ = len(examples) - len(chats)
        held_chats = self._tokenized(self._chat_examples(held))
        self.training_report_: TuningReport = train_lora(
            self.model_, self.tokenizer_, chats,
            max_steps=self.max_steps, batch_size=self.train_batch_size, learning_rate=self.learning_rate,
            seed=self.random_state, eval_every=self.eval_every,
            evaluate=lambda step: self._curve_point(held, held_chats),
            description=f"{self.name}: LoRA tuning {self.base} on {len(chats):,} examples",
        )  # fmt: skip
        self.training_data_ = f"{reviews.name} ({len(train):,} reviews)" + (f" + {self.sft_file}" if self.sft_file else "")
        self._publish_adapter()

    def _split(self, reviews: ReviewSet) -> tuple[ReviewSet, ReviewSet]:
        """A seeded hold-out of ``validation_reviews`` (at most a fifth) for the curve."""
        order = list(reviews)
        random.Random(self.random_state).shuffle(order)
        size = min(self.validation_reviews, len(order) // 5)
        if size < 1:
            raise InputDataError(f"sft needs at least 5 training reviews (one held out to check answers); got {len(order)}")
        return reviews.with_reviews(order[size:]), reviews.with_reviews(order[:size])

    def _chat_examples(self, reviews: ReviewSet) -> list[dict]:
        forms = FORMS if self.form == "both" else (self.form,)
        forms = forms if self.task_ is not Task.RATING else ("detect",)
        return list(sft_examples(reviews, self.task_, forms=forms, evidence=self.evidence, prompts=self.prompts))

    def _file_examples(self) -> list[dict]:
        """Examples from ``sft_file``; they must come from this version's templates, or
        the model would learn to answer prompts it will never be shown."""
        examples = []
        with Path(self.sft_file).open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    example = json.loads(line)
                    messages, prompt_hash = example["messages"], example["prompt_hash"]
                except (json.JSONDecodeError, KeyError, TypeError) as error:
                    raise InputDataError(f"{self.sft_file}:{number}: not an sft-data example ({error})") from None
                if prompt_hash != self.prompts.hash:
                    raise InputDataError(
                        f"{self.sft_file}:{number}: built from prompt templates {prompt_hash}, this version uses "
                        f"{self.prompts.hash}; rebuild it with `topicsent sft-data`"
                    )
                examples.append({"messages": messages})
        return examples

    def _tokenized(self, examples: list[dict]) -> list[ChatTokens]:
        chats = (tokenize_chat(self.tokenizer_, example["messages"]) for example in examples)
        return [chat for chat in chats if len(chat.input_ids) <= self.max_length]

    def _curve_point(self, held: ReviewSet, held_chats: list[ChatTokens]) -> dict[str, Any]:
        """Validation loss and the accuracy of real answers on the held-out reviews."""
        self._publish_adapter()
        answers = self.predict_labelled(held)
        if self.task_ is Task.RATING:
            accuracy = rating_scores(held, answers, self.label_space_)["accuracy"]
        else:  # an unparsed review's aspects count as wrong
            accuracy = polarity_scores(held, answers, self.label_space_.polarities)["polarity_accuracy"]
        answered = sum(answer.status == "ok" for answer in answers)
        loss = answer_loss(self.model_, self.tokenizer_, held_chats, self.train_batch_size) if held_chats else None
        return {"validation_loss": loss, "validation_accuracy": accuracy, "parsed": answered / len(held), "score": accuracy}

    def _publish_adapter(self) -> None:
        """Make the current weights the ones predictions use: a GGUF base gets them as a
        llama.cpp adapter file (its hash keys the answer cache), another base is asked in
        memory under a fingerprint of the weights. Drops the backend of older weights."""
        source = resolve_base(self.base)
        if source.gguf_file is not None:
            self._scratch = getattr(self, "_scratch", None) or tempfile.TemporaryDirectory(prefix="topicsent-sft-")
            self.adapter_gguf_ = export_lora_gguf(
                self.model_, source.directory / source.gguf_file, Path(self._scratch.name) / ADAPTER_GGUF
            )
        else:
            self.adapter_gguf_ = None
        self.adapter_id_ = adapter_fingerprint(self.model_)
        self._reset_run_state()

    def _make_backend(self) -> Backend:
        if getattr(self, "_backend_instance", None) is None:
            if self.adapter_gguf_ is not None:
                self._backend_instance = LlamaCppBackend(self.base, lora=str(self.adapter_gguf_))
            else:
                self._backend_instance = TransformersBackend.in_memory(
                    self.base, self.tokenizer_, self.model_, identity=self.adapter_id_
                )
        return self._backend_instance

    # ----- persistence -------------------------------------------------------------------

    def _save_state(self, directory: Path) -> None:
        super()._save_state(directory)
        target = directory / ADAPTER_DIR
        if hasattr(self, "model_"):
            self.model_.save_pretrained(target, safe_serialization=True)
            self.tokenizer_.save_pretrained(target)
            if self.adapter_gguf_ is not None:
                shutil.copyfile(self.adapter_gguf_, target / ADAPTER_GGUF)
        elif self.adapter_gguf_.parent.resolve() != target.resolve():  # loaded for llama.cpp only: copy the saved adapter
            shutil.copytree(self.adapter_gguf_.parent, target, dirs_exist_ok=True)
        facts = {
            "base": self.base, "task": self.task_.value, "training_data": self.training_data_,
            "too_long_examples": self.too_long_examples_, "adapter_id": self.adapter_id_, **self.training_report_.to_dict(),
        }  # fmt: skip
        (directory / TUNING_FILE).write_text(json.dumps(facts, indent=2, ensure_ascii=False), encoding="utf-8")
        (target / "README.md").write_text(self._model_card(facts), encoding="utf-8")

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        facts = json.loads((directory / TUNING_FILE).read_text(encoding="utf-8"))
        self.training_data_, self.too_long_examples_ = facts["training_data"], facts["too_long_examples"]
        self.training_report_ = TuningReport(facts["steps"], facts["best_step"], facts["curve"])
        self.adapter_gguf_ = directory / ADAPTER_DIR / ADAPTER_GGUF
        if self.adapter_gguf_.is_file():  # llama.cpp answers: no torch, no fp32 copy of the base
            self.adapter_id_ = facts["adapter_id"]
        else:
            self.adapter_gguf_ = None
            self.model_, self.tokenizer_ = load_adapter(resolve_base(self.base), directory / ADAPTER_DIR)
            self.adapter_id_ = adapter_fingerprint(self.model_)
        self._reset_run_state()

    def _model_card(self, facts: dict[str, Any]) -> str:
        curve = "\n".join(
            f"| {p['step']} | {_number(p['train_loss'])} | {_number(p['validation_loss'])} "
            f"| {p['validation_accuracy']:.3f} | {p['parsed']:.2f} |"
            for p in facts["curve"]
        )
        return f"""# topicsent `sft` adapter

- Base model: `{self.base}` (licence: {base_licence(self.base)});
  LoRA rank {self.lora_rank} on the attention projections; the base weights are unchanged.
- Task: `{facts["task"]}`, answering the `llm` method's zero-shot prompt (templates {self.prompts.hash}).
- Training data: {facts["training_data"]}; {facts["steps"]} steps of {self.train_batch_size};
  adapters kept from step {facts["best_step"]} (best accuracy on the held-out reviews).
- Parameters: `{json.dumps(self.get_params(), ensure_ascii=False)}`.
- Licence: the base model's licence applies; check the training data's licence before redistributing.

| step | train loss | validation loss | validation accuracy | parsed |
|---|---|---|---|---|
{curve}

Use with `topicsent predict --model DIR reviews.csv`, or load the adapter alone with
`llm[backend=transformers,model={self.base},backend_options={{"adapter": "DIR/{ADAPTER_DIR}"}}]`.
"""


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
