"""The Anthropic API's list prices, dated, and the cost of a request's usage at them.

USD per million tokens: (input, output, 5-minute cache write, cache read). Overridable per
model with `[plugins.anthropic] prices` (and `prices_date`).
"""

from __future__ import annotations

import re

from mksap.contracts.provider import Usage

#: USD per million tokens: (input, output, 5-minute cache write, cache read), list prices on
#: PRICES_DATE. Haiku 5.5 is the prompt <= 100k tokens tier (mksap's prompts are far smaller).
PRICES_DATE = "2026-11-01"
_OPUS_45 = (5.0, 25.0, 6.25, 0.50)
_OPUS_4 = (15.0, 75.0, 18.75, 1.50)
_SONNET_4 = (3.0, 15.0, 3.75, 0.30)
PRICES: dict[str, tuple[float, float, float, float]] = {
    "claude-fable-5-1": (10.0, 50.0, 12.50, 0.25),
    "claude-mythos-5-1": (10.0, 50.0, 12.50, 0.25),
    "claude-fable-5": (10.0, 50.0, 12.50, 1.00),
    "claude-mythos-5": (10.0, 50.0, 12.50, 1.00),
    "claude-opus-5-5": (4.0, 20.0, 5.0, 0.20),
    "claude-opus-5": _OPUS_45,
    "claude-opus-4-8": _OPUS_45,
    "claude-opus-4-7": _OPUS_45,
    "claude-opus-4-6": _OPUS_45,
    "claude-opus-4-5": _OPUS_45,
    "claude-opus-4-1": _OPUS_4,
    "claude-opus-4-0": _OPUS_4,
    "claude-opus-4": _OPUS_4,
    "claude-sonnet-5-5": (2.0, 10.0, 2.50, 0.10),
    "claude-sonnet-5": (2.0, 10.0, 2.50, 0.20),
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4-0": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,
    "claude-3-7-sonnet": _SONNET_4,
    "claude-haiku-5-5": (0.10, 0.50, 0.125, 0.01),
    "claude-haiku-4-5": (1.0, 5.0, 1.25, 0.10),
    "claude-3-5-haiku": (0.80, 4.0, 1.0, 0.08),
    "claude-3-haiku": (0.25, 1.25, 0.30, 0.03),
}
DATED = re.compile(r"(-\d{8}|-latest)$")

#: The shortest prefix (tools + system, in tokens) the API caches, by model, as published and
#: observed on MIN_CACHEABLE_DATE. A `cache_control` prefix below it is neither written nor read:
#: the request succeeds at the full input price. Overridable with `[plugins.anthropic]
#: cache_minimums` (and `cache_minimums_date`). Sonnet 4.6 is 2,048 as observed (some listings
#: say 1,024); a model not listed is assumed to need MIN_CACHEABLE_DEFAULT.
MIN_CACHEABLE_DATE = "2026-11-01"
MIN_CACHEABLE_DEFAULT = 1024
MIN_CACHEABLE_TOKENS: dict[str, int] = {
    "claude-opus-5": 512,
    "claude-fable-5": 512,
    "claude-mythos-5": 512,
    "claude-opus-4-8": 1024,
    "claude-opus-4-7": 4096,
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-opus-4-1": 1024,
    "claude-opus-4-0": 1024,
    "claude-opus-4": 1024,
    "claude-sonnet-5": 1024,
    "claude-sonnet-4-6": 2048,
    "claude-sonnet-4-5": 1024,
    "claude-sonnet-4-0": 1024,
    "claude-sonnet-4": 1024,
    "claude-3-7-sonnet": 1024,
    "claude-haiku-4-5": 4096,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
}


def min_cacheable_tokens(model: str) -> int:
    """The minimum cacheable prefix of `model` (a dated id or `-latest` alias is its family)."""
    return MIN_CACHEABLE_TOKENS.get(DATED.sub("", model), MIN_CACHEABLE_DEFAULT)


def estimate_cost(model: str, usage: Usage) -> float | None:
    """Estimated USD cost of `usage` on `model` at `PRICES_DATE` list prices; None if unknown."""
    prices = PRICES.get(DATED.sub("", model))
    if prices is None:
        return None
    return cost_at(prices, usage)


def cost_at(prices: tuple[float, float, float, float], usage: Usage) -> float:
    tokens = [getattr(usage, f) for f in Usage.model_fields]  # same order as the prices
    return sum(n * p for n, p in zip(tokens, prices, strict=True)) / 1_000_000
