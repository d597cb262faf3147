"""Small torch heads trained on frozen token vectors, and their training loop.

One encoder pass per review gives token vectors; an aspect-conditioned attention
head then pools those tokens differently for each aspect (a learned query per
category, or the term's own vectors for a term), so one sentence can be positive
about the food and negative about the staff without re-encoding it per aspect.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from topicsent._progress import progress_bar
from topicsent.encoders import TokenEmbeddings


def pad_tokens(items: Sequence[TokenEmbeddings]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token vectors padded into ``(batch, max_tokens, dim)`` and their boolean mask."""
    longest = max(len(item.vectors) for item in items)
    dim = items[0].vectors.shape[1]
    vectors = np.zeros((len(items), longest, dim), dtype=np.float32)
    mask = np.zeros((len(items), longest), dtype=bool)
    for row, item in enumerate(items):
        vectors[row, : len(item.vectors)] = item.vectors
        mask[row, : len(item.vectors)] = True
    return torch.from_numpy(vectors), torch.from_numpy(mask)


def tokens_in_span(offsets, start: int, end: int):
    """Which tokens overlap the character span ``[start, end)``: ``offsets`` holds each
    token's character span in its last axis (a numpy array or a torch tensor); special
    tokens (empty spans) never do."""
    return (offsets[..., 1] > start) & (offsets[..., 0] < end) & (offsets[..., 1] > offsets[..., 0])


def term_vector(item: TokenEmbeddings, start: int, end: int) -> np.ndarray:
    """Mean vector of the tokens inside the character span (the term); the sentence
    mean when truncation cut the term off."""
    inside = tokens_in_span(item.offsets, start, end)
    return item.vectors[inside].mean(axis=0) if inside.any() else item.mean()


class AspectAttentionHead(nn.Module):
    """Scores (review, aspect) pairs from the review's token vectors.

    A category has a learned query and vector; a term's query is its mean token vector,
    projected. Features: the attention-pooled tokens, the masked mean of all tokens and
    the aspect vector, then an MLP.
    """

    def __init__(self, dim: int, n_outputs: int, *, n_categories: int = 0, hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.dim = dim
        self.category_queries = nn.Embedding(max(n_categories, 1), dim)
        self.category_vectors = nn.Embedding(max(n_categories, 1), dim)
        self.term_query = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(3 * dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_outputs)
        )

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, terms: torch.Tensor | None = None) -> torch.Tensor:
        """Without ``terms``: scores for every category at once, shape ``(batch, n_categories,
        n_outputs)`` (one pass over a review's tokens serves all its categories). With
        ``terms`` (``(batch, dim)``, one term per row): shape ``(batch, n_outputs)``."""
        if terms is None:
            queries, aspects = self.category_queries.weight, self.category_vectors.weight  # (C, d)
            scores = torch.einsum("btd,cd->bct", tokens, queries)
        else:
            queries, aspects = self.term_query(terms), terms  # (B, d)
            scores = torch.einsum("btd,bd->bt", tokens, queries).unsqueeze(1)
        scores = scores / math.sqrt(self.dim)
        weights = torch.softmax(scores.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=2)
        attended = torch.einsum("bct,btd->bcd", weights, tokens)
        mean = ((tokens * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)).unsqueeze(1)
        aspects = aspects.unsqueeze(0) if terms is None else aspects.unsqueeze(1)
        features = torch.cat([attended, mean.expand_as(attended), aspects.expand_as(attended)], dim=2)
        outputs = self.mlp(features)
        return outputs if terms is None else outputs[:, 0]


def train_head(
    head: nn.Module,
    batches,
    *,
    loss_fn: nn.Module,
    epochs: int,
    learning_rate: float,
    validation=None,
    patience: int = 4,
    description: str = "train head",
) -> list[float]:
    """AdamW over ``batches(epoch)`` (a callable yielding ``(inputs, targets)``), keeping
    the weights of the epoch with the lowest loss on ``validation`` (a list of
    ``(inputs, targets)``), and stopping after ``patience`` epochs without improvement.
    Returns the validation loss curve. Seed torch before building the head: its
    initial weights and dropout masks come from torch's global generator."""
    optimizer = torch.optim.AdamW(head.parameters(), lr=learning_rate, weight_decay=0.01)
    best_loss, best_state, curve, stale = math.inf, None, [], 0
    with progress_bar(description, total=epochs) as advance:
        for epoch in range(epochs):
            head.train()
            for inputs, targets in batches(epoch):
                optimizer.zero_grad()
                loss_fn(head(**inputs), targets).backward()
                optimizer.step()
            advance(1)
            if not validation:
                continue
            head.eval()
            with torch.no_grad():
                losses = [loss_fn(head(**inputs), targets).item() * len(targets) for inputs, targets in validation]
            curve.append(sum(losses) / sum(len(t) for _, t in validation))
            if curve[-1] < best_loss - 1e-4:
                best_loss, stale = curve[-1], 0
                best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
            else:
                stale += 1
                if stale >= patience:
                    break
    if best_state is not None:
        head.load_state_dict(best_state)
    head.eval()
    return curve
