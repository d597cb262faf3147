"""LoRA instruction tuning of a small causal LM on chat examples, on CPU.

The loss is on the assistant turn only (the prompt tokens are masked), so the model
learns to answer, not to recite the instructions. Examples are batched by length
(little padding), steps rather than epochs bound the cost, and every ``eval_every``
steps a caller-supplied check (validation loss, and accuracy of real generated
answers) draws the curve; the best-scoring adapter weights are restored at the end.
Only the adapters train; the base stays frozen (and is never written).
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from topicsent._progress import progress_bar
from topicsent.encoders._transformer import prepare_transformers
from topicsent.errors import InvalidParameterError
from topicsent.methods._finetuning import BaseModel, dequantised, length_batches

IGNORE_INDEX = -100  # label of a token that is not scored (prompt, padding)
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class ChatTokens:
    """One tokenised chat: every token, and how many of them are the prompt."""

    input_ids: tuple[int, ...]
    prompt_length: int


def tokenize_chat(tokenizer, messages: Sequence[dict[str, str]]) -> ChatTokens:
    """The chat as the model's template renders it; the last message is the answer.

    The template must render the prompt as a prefix of the whole chat (it does for
    ChatML models such as Qwen2.5 and SmolLM2); otherwise masking would be wrong, so
    that is an error rather than a silent misalignment."""
    if not messages or messages[-1]["role"] != "assistant":
        raise InvalidParameterError("an instruction example must end with the assistant's answer")
    whole = tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=False)
    prompt = tokenizer.apply_chat_template(list(messages[:-1]), tokenize=True, add_generation_prompt=True, return_dict=False)
    if list(whole[: len(prompt)]) != list(prompt):
        raise InvalidParameterError("this model's chat template does not render the prompt as a prefix of the chat")
    return ChatTokens(tuple(whole), len(prompt))


def load_causal_lm(base: BaseModel, *, lora_rank: int, seed: int):
    """The base instruction model (fp32; a GGUF is dequantised) with fresh LoRA
    adapters on the attention projections, and its tokenizer."""
    prepare_transformers()
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    base = dequantised(base)
    tokenizer = AutoTokenizer.from_pretrained(base.directory)
    model = AutoModelForCausalLM.from_pretrained(base.directory, dtype=torch.float32, use_safetensors=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = LoraConfig(
        task_type="CAUSAL_LM", r=lora_rank, lora_alpha=2 * lora_rank, lora_dropout=0.05, target_modules=list(LORA_TARGETS)
    )
    return get_peft_model(model, config), tokenizer


def load_adapter(base: BaseModel, adapter_directory):
    """The base model with a saved adapter, ready for generation, and the tokenizer saved with it."""
    prepare_transformers()
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter_directory)
    model = AutoModelForCausalLM.from_pretrained(dequantised(base).directory, dtype=torch.float32, use_safetensors=True)
    return PeftModel.from_pretrained(model, adapter_directory).eval(), tokenizer


def adapter_fingerprint(model) -> str:
    """A short hash of the adapter weights: the model's identity in the answer cache
    (the same weights, in memory after training or loaded from disk, give the same one)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(_adapter_state(model).items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _adapter_state(model) -> dict[str, Any]:
    return {name: tensor for name, tensor in model.state_dict().items() if "lora_" in name}


def _collate(chats: Sequence[ChatTokens], pad_id: int) -> dict[str, Any]:
    """Right-padded ids, attention mask, and labels scoring only the answer tokens."""
    import torch

    width = max(len(chat.input_ids) for chat in chats)
    ids = torch.full((len(chats), width), pad_id, dtype=torch.long)
    labels = torch.full((len(chats), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(chats), width), dtype=torch.long)
    for row, chat in enumerate(chats):
        tokens = torch.tensor(chat.input_ids, dtype=torch.long)
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
        labels[row, chat.prompt_length : len(tokens)] = tokens[chat.prompt_length :]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def answer_loss(model, tokenizer, chats: Sequence[ChatTokens], batch_size: int) -> float:
    """Mean cross-entropy per answer token (teacher-forced, no generation)."""
    import torch

    total, tokens = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for batch in length_batches([len(c.input_ids) for c in chats], batch_size, None):
            inputs = _collate([chats[i] for i in batch], tokenizer.pad_token_id)
            scored = int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())
            total += float(model(**inputs).loss) * scored
            tokens += scored
    return total / max(tokens, 1)


@dataclass
class TuningReport:
    """What tuning did: steps run, the step whose adapters were kept, and the curve."""

    steps: int
    best_step: int
    curve: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "best_step": self.best_step, "curve": self.curve}


def train_lora(
    model,
    tokenizer,
    chats: Sequence[ChatTokens],
    *,
    max_steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    eval_every: int,
    evaluate: Callable[[int], dict[str, float]],
    description: str,
) -> TuningReport:
    """AdamW on the adapters with linear warm-up and decay for ``max_steps`` batches
    (cycling through the examples). ``evaluate(step)`` runs at step 0, every
    ``eval_every`` steps and at the end; it returns the curve point (with the time
    so far and the mean training loss since the last point added), whose ``score`` (higher is better) picks
    the adapter weights kept."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    if not chats:
        raise InvalidParameterError("no instruction examples to train on (all longer than max_length?)")
    rng = random.Random(seed)
    lengths = [len(chat.input_ids) for chat in chats]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(0.06 * max_steps), max_steps)
    torch.manual_seed(seed)
    report = TuningReport(steps=0, best_step=0)
    best_score, best_state = (-math.inf, -math.inf), None
    losses: list[float] = []  # training losses since the last curve point
    started = time.perf_counter()

    def checkpoint(step: int) -> None:
        nonlocal best_score, best_state
        point = {"step": step, "seconds": round(time.perf_counter() - started, 1)}
        point |= {"train_loss": sum(losses) / len(losses) if losses else None, **evaluate(step)}
        losses.clear()
        report.curve.append(point)
        rank = (point["score"], -(point.get("validation_loss") or 0.0))  # ties: the lower validation loss
        if rank > best_score:
            best_score, report.best_step = rank, step
            best_state = copy.deepcopy(_adapter_state(model))

    checkpoint(0)
    batches: list[list[int]] = []
    with progress_bar(description, total=max_steps) as advance:
        for step in range(1, max_steps + 1):
            if not batches:
                batches = length_batches(lengths, batch_size, rng)
            model.train()
            loss = model(**_collate([chats[i] for i in batches.pop()], tokenizer.pad_token_id)).loss
            loss.backward()
            losses.append(loss.item())
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            report.steps = step
            advance(1)
            if step % eval_every == 0 or step == max_steps:
                checkpoint(step)
    model.load_state_dict(best_state, strict=False)
    model.eval()
    return report
