"""One encoder pass per review, fine-tuned end to end with per-aspect attention heads.

BERT-pair (Sun et al. 2019) runs the encoder once per (review, category): 8 passes per
MAMS review in training and prediction. Here the encoder runs once per review and
aspect-conditioned attention heads (:class:`~topicsent.methods._heads.AspectAttentionHead`,
a learned query per category, or the term's own token vectors for ATSA) read its token
vectors: the polarity of every category, and (ACSA) whether it is mentioned, from one
pass. It is the ``embed-head`` attention design with the encoder trained too, in the
spirit of the aspect-attention models of the MAMS paper (Jiang et al. 2019, EMNLP).

What keeps it affordable on a CPU: only the top ``train_layers`` transformer layers
train (the rest run without storing activations), with layer-wise learning-rate decay
(Howard and Ruder 2018; Clark et al. 2020) below a larger rate for the new heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from topicsent.methods._heads import AspectAttentionHead, tokens_in_span

HEAD_LEARNING_RATE = 1e-3
IGNORE = -1  # polarity target of a category the review does not mention


class OnePassAspectModel(nn.Module):
    """A transformer encoder with a polarity head and, for ACSA, a detection head.

    Parameters
    ----------
    encoder : transformers ``PreTrainedModel``
        Gives ``last_hidden_state`` of shape ``(batch, tokens, dim)``.
    n_polarities : int
        Polarity classes.
    n_categories : int
        Categories (ACSA); 0 for terms (ATSA), where no detection head is built.
    hidden : int
        Hidden units of each head's MLP.
    """

    def __init__(self, encoder, n_polarities: int, n_categories: int, hidden: int = 256) -> None:
        super().__init__()
        self.encoder = encoder
        dim = int(encoder.config.hidden_size)
        self.polarity = AspectAttentionHead(dim, n_polarities, n_categories=n_categories, hidden=hidden)
        self.detection = AspectAttentionHead(dim, 1, n_categories=n_categories, hidden=hidden) if n_categories else None

    def start_detection_at(self, mention_rate: float) -> None:
        """Start the detection head's bias at the training data's mention rate (logit),
        so early steps learn which categories are mentioned rather than how rare
        mentions are (the prior initialisation of Lin et al. 2017, focal loss)."""
        rate = min(max(mention_rate, 1e-3), 1 - 1e-3)
        with torch.no_grad():
            self.detection.mlp[-1].bias.fill_(float(np.log(rate / (1 - rate))))

    def forward(self, input_ids, attention_mask, term_mask=None, term_rows=None, **encoder_inputs) -> dict[str, torch.Tensor]:
        """ACSA (no ``term_mask``): ``polarity`` logits ``(batch, n_categories, n_polarities)``
        and ``detection`` logits ``(batch, n_categories)``. ATSA: each of ``n_terms``
        terms is a row of ``term_mask`` ``(n_terms, tokens)`` marking its tokens in the
        review ``term_rows[i]`` of the batch (a review's terms share its one pass);
        ``polarity`` is ``(n_terms, n_polarities)``."""
        tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **encoder_inputs).last_hidden_state
        mask = attention_mask.bool()
        if term_mask is None:
            return {"polarity": self.polarity(tokens, mask), "detection": self.detection(tokens, mask)[..., 0]}
        tokens, mask = tokens[term_rows], mask[term_rows]
        weights = term_mask.unsqueeze(-1).to(tokens.dtype)
        terms = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1)
        return {"polarity": self.polarity(tokens, mask, terms)}


def encode_texts(
    tokenizer, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int] | None]] | None, max_length: int
) -> dict[str, Any]:
    """Tokenised texts (padded to the batch's longest) and, with ``spans`` (for each
    text, the character offsets of each of its terms), a ``term_mask`` ``(n_terms,
    tokens)`` of the tokens inside each span and ``term_rows``, the text of each term.
    A span cut off by truncation, or missing, falls back to every real token."""
    encoded = tokenizer(
        list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt",
        return_offsets_mapping=spans is not None,
    )  # fmt: skip
    if spans is None:
        return dict(encoded)
    offsets = encoded.pop("offset_mapping")
    rows = [row for row, text_spans in enumerate(spans) for _ in text_spans]
    term_mask = torch.zeros((len(rows), offsets.shape[1]), dtype=torch.bool)
    for term, (row, span) in enumerate(zip(rows, (span for text_spans in spans for span in text_spans), strict=True)):
        if span is not None:
            term_mask[term] = tokens_in_span(offsets[row], *span)
        if not term_mask[term].any():
            term_mask[term] = encoded["attention_mask"][row].bool()
    return dict(encoded) | {"term_mask": term_mask, "term_rows": torch.tensor(rows, dtype=torch.long)}


def transformer_layers(encoder) -> nn.ModuleList:
    """The encoder's stack of transformer layers (the longest ``ModuleList`` named
    ``layer``/``layers``: BERT, XLM-R, MPNet and Gemma 3 all keep theirs so)."""
    stacks = [
        module for name, module in encoder.named_modules()
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in {"layer", "layers"}
    ]  # fmt: skip
    if not stacks:
        raise ValueError(f"{type(encoder).__name__}: no transformer layer stack found")
    return max(stacks, key=len)


def layerwise_groups(
    model: OnePassAspectModel, *, learning_rate: float, train_layers: int | None, layer_decay: float
) -> list[dict[str, Any]]:
    """AdamW parameter groups: the heads at :data:`HEAD_LEARNING_RATE`; the top encoder
    layer at ``learning_rate``, each layer below at ``layer_decay`` times the one above;
    only the top ``train_layers`` layers (None: all, with the embeddings) are trained,
    the rest are frozen (``requires_grad=False``)."""
    layers = transformer_layers(model.encoder)
    count = len(layers) if train_layers is None else min(train_layers, len(layers))
    model.encoder.requires_grad_(False)
    groups: list[dict[str, Any]] = []
    for depth, layer in enumerate(reversed(layers[len(layers) - count :])):
        layer.requires_grad_(True)
        groups.append({"params": list(layer.parameters()), "lr": learning_rate * layer_decay**depth})
    in_layers = {id(p) for layer in layers for p in layer.parameters()}
    rest = [p for p in model.encoder.parameters() if id(p) not in in_layers]
    if train_layers is None or train_layers >= len(layers):  # embeddings (and a final norm) train too
        for p in rest:
            p.requires_grad_(True)
        groups.append({"params": rest, "lr": learning_rate * layer_decay**count})
    else:  # a norm after the stack (Gemma 3) sits above the trained layers: it trains with them
        after = [p for name, p in model.encoder.named_parameters() if id(p) not in in_layers and _after_layers(name)]
        for p in after:
            p.requires_grad_(True)
        if after:
            groups.append({"params": after, "lr": learning_rate})
    heads = [p for name, p in model.named_parameters() if not name.startswith("encoder.")]
    groups.append({"params": heads, "lr": HEAD_LEARNING_RATE})
    return groups


def _after_layers(name: str) -> bool:
    """Parameters of a final norm applied after the layer stack (not embeddings, pooler)."""
    return name.startswith("norm.") or name.startswith("final_layer_norm")


def acsa_loss(detection_weight: float, polarity_weights: torch.Tensor | None):
    """Cross-entropy over the mentioned categories' polarities (unmentioned ones are
    ``IGNORE``; none in a batch of reviews without aspects), optionally class-weighted,
    plus ``detection_weight`` times the binary cross-entropy of every category's mention."""

    def loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
        detection = nn.functional.binary_cross_entropy_with_logits(outputs["detection"], targets["detection"].float())
        if not (targets["polarity"] != IGNORE).any():  # no review of the batch mentions a category: the mean is 0/0
            return detection_weight * detection
        logits = outputs["polarity"]
        polarity = nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets["polarity"].reshape(-1),
            weight=polarity_weights, ignore_index=IGNORE,
        )  # fmt: skip
        return polarity + detection_weight * detection

    return loss


def term_loss(polarity_weights: torch.Tensor | None):
    """Cross-entropy of each (review, term) row's polarity, optionally class-weighted."""

    def loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(outputs["polarity"], targets["polarity"], weight=polarity_weights)

    return loss


def polarity_hits(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Correct and counted polarities (mentioned categories, or every term)."""
    predicted = outputs["polarity"].argmax(-1)
    known = targets["polarity"] != IGNORE
    return int((predicted[known] == targets["polarity"][known]).sum()), int(known.sum())


def class_weights(labels: np.ndarray, n_classes: int, power: float) -> torch.Tensor | None:
    """Inverse-frequency class weights ``(count / mean count) ** -power`` (0: none;
    0.5: the square root, which lifts rare ``neutral``/``conflict`` without drowning
    the common classes), normalised to mean 1."""
    if power == 0:
        return None
    counts = np.bincount(labels[labels != IGNORE], minlength=n_classes).astype(float)
    weights = np.where(counts > 0, (np.maximum(counts, 1) / counts[counts > 0].mean()) ** -power, 0.0)
    return torch.tensor(weights / weights[weights > 0].mean(), dtype=torch.float32)
