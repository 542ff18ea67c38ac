"""What a client has spent and seen: requests, retries, errors, tokens, and an optional cost estimate."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# USD per 1M (input, output) tokens: list prices of well-known models as published by OpenAI in 2025.
# An ESTIMATE only: prices change, batch/cached discounts are ignored. Pass explicit prices to override.
KNOWN_PRICES_PER_1M: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
}


@dataclass
class UsageStats:
    """Running totals for one client. Safe to read from the event loop at any time (progress bars).

    `requests` counts calls that returned a reply; `failed` those that ended in `LLMError`;
    `attempts` every HTTP try; `retries` the tries after the first; `errors` counts each failed try
    by kind (``timeout``, ``connection``, ``status_429``, ``status_500``, ``bad_response`` ...).
    """

    requests: int = 0
    failed: int = 0
    attempts: int = 0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    in_flight: int = 0
    price_in_per_1m: float | None = None
    price_out_per_1m: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def estimated_cost_usd(self) -> float | None:
        """Tokens times the configured prices; None when no price is known."""
        if self.price_in_per_1m is None or self.price_out_per_1m is None:
            return None
        return (
            self.prompt_tokens * self.price_in_per_1m + self.completion_tokens * self.price_out_per_1m
        ) / 1e6

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "failed": self.failed,
            "attempts": self.attempts,
            "retries": self.retries,
            "errors": dict(self.errors),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "in_flight": self.in_flight,
            "estimated_cost_usd": self.estimated_cost_usd,
        }


def known_prices(model: str) -> tuple[float, float] | None:
    """List price (per 1M input, output tokens) for a well-known model name, matching dated variants."""
    name = model.rsplit("/", 1)[-1]
    # Longest key first, so "gpt-4o-mini-2024-07-18" is priced as gpt-4o-mini, not gpt-4o.
    for key in sorted(KNOWN_PRICES_PER_1M, key=len, reverse=True):
        if name == key or name.startswith(key + "-"):
            return KNOWN_PRICES_PER_1M[key]
    return None
