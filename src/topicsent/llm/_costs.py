"""What a call costs: USD per million input and output tokens, per model.

The built-in table holds list prices of common hosted models when this was written;
prices change, so ``$TOPICSENT_LLM_PRICES`` (a JSON file ``{"model": [input, output]}``)
overrides or extends it. Local backends cost nothing. A hosted model without a known
price has unknown cost, and a cost budget refuses to run on it rather than guess.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from topicsent.errors import InvalidParameterError

PRICES_ENV = "TOPICSENT_LLM_PRICES"

#: USD per 1M tokens (input, output); model names match exactly or by prefix.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    # models fine-tuned on OpenAI (``ft:gpt-4o-mini-2024-07-18:org::id``) cost more to call
    "ft:gpt-4o-mini": (0.30, 1.20),
    "ft:gpt-4o": (3.75, 15.00),
    "ft:gpt-4.1-nano": (0.20, 0.80),
    "ft:gpt-4.1-mini": (0.80, 3.20),
    "ft:gpt-4.1": (3.00, 12.00),
    "gemini-2.0-flash": (0.10, 0.40),
    "gemini-2.5-flash": (0.30, 2.50),
}


def price_table() -> dict[str, tuple[float, float]]:
    """The built-in prices, overridden by the file in ``$TOPICSENT_LLM_PRICES``."""
    table = dict(DEFAULT_PRICES)
    override = os.environ.get(PRICES_ENV)
    if override:
        try:
            loaded = json.loads(Path(override).read_text(encoding="utf-8"))
            table |= {model: (float(pair[0]), float(pair[1])) for model, pair in loaded.items()}
        except (OSError, ValueError, TypeError, IndexError, AttributeError) as error:
            raise InvalidParameterError(
                f"${PRICES_ENV}={override}: expected a JSON file {{model: [input, output]}} ({error})"
            ) from None
    return table


def model_price(model: str, *, local: bool) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens; zero for local models, None when unknown.
    The longest matching prefix wins (``gpt-4o-mini-2024`` is priced as ``gpt-4o-mini``)."""
    if local:
        return (0.0, 0.0)
    table = price_table()
    matches = [name for name in table if model == name or model.startswith(name)]
    return table[max(matches, key=len)] if matches else None


def call_cost(price: tuple[float, float] | None, input_tokens: int, output_tokens: int) -> float | None:
    if price is None:
        return None
    return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000
