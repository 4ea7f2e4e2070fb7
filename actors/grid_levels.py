"""The grid's geometry, pure: where the levels are, how far apart, and how volatility widens them.

Spacing comes from config (a percentage, or bounds) and may be widened by realised volatility; then a
minimum total width and a hard floor in price ticks are applied, after rounding, every time (C-4). The
floor is enforced by walking outwards from the anchor, so levels are strictly increasing and at least
`min_ticks` ticks apart by construction; a grid that would leave the market's price range is refused.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from messages.types import ZERO, MarketRules

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class GridShape:
    """Everything the level prices depend on besides the market's rules."""
    anchor: Decimal
    below: int                      # levels -below..above; the anchor is level 0
    above: int
    spacing: str                    # "arithmetic" | "geometric"
    pct: Decimal                    # distance between neighbouring levels, percent of the anchor
    min_ticks: int = 1
    min_width_pct: Decimal = ZERO   # top - bottom at least this percent of the anchor


def level_range(levels_per_side: int, bias: str) -> tuple[int, int]:
    """(below, above): a neutral grid straddles the anchor; a long grid lies below it (it buys first
    and only sells what it bought), a short grid above it. Always 2N + 1 levels."""
    return {"long": (2 * levels_per_side, 0), "short": (0, 2 * levels_per_side)}.get(
        bias, (levels_per_side, levels_per_side))


def shape_from_bounds(lower: Decimal, upper: Decimal, below: int, above: int, spacing: str,
                      min_ticks: int = 1, min_width_pct: Decimal = ZERO) -> GridShape:
    """A grid with its outermost levels on the bounds, divided into below + above equal steps
    (equal prices or equal ratios); the anchor is the level `below` steps up from the lower bound."""
    steps = below + above
    if spacing == "arithmetic":
        step = (upper - lower) / steps
        anchor = lower + step * below
        pct = step / anchor * HUNDRED
    else:
        ratio = math.exp(math.log(float(upper / lower)) / steps)
        anchor = lower * Decimal(repr(ratio ** below))
        pct = (Decimal(repr(ratio)) - 1) * HUNDRED
    return GridShape(anchor, below, above, spacing, pct, min_ticks, min_width_pct)


def _width(spacing: str, pct: float, below: int, above: int) -> float:
    """(top - bottom) / anchor for a spacing in percent."""
    if spacing == "arithmetic":
        return pct / 100 * (below + above)
    r = 1 + pct / 100
    return r ** above - r ** -below


def effective_pct(shape: GridShape) -> Decimal:
    """The spacing after the minimum total width is applied (the grid only ever widens)."""
    width = float(shape.min_width_pct / HUNDRED)
    if width <= 0 or _width(shape.spacing, float(shape.pct), shape.below, shape.above) >= width:
        return shape.pct
    low, high = float(shape.pct), 100.0
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if _width(shape.spacing, mid, shape.below, shape.above) < width else (low, mid)
    return Decimal(repr(high))


def _raw(shape: GridShape, pct: Decimal, i: int) -> Decimal:
    if shape.spacing == "arithmetic":
        return shape.anchor + shape.anchor * pct / HUNDRED * i
    return shape.anchor * (1 + pct / HUNDRED) ** i


def grid_prices(shape: GridShape, rules: MarketRules) -> tuple[dict[int, Decimal] | None, str]:
    """Level -> price for levels -below..above, or (None, reason) when no valid grid exists."""
    pct = effective_pct(shape)
    anchor = rules.round_price(shape.anchor)
    if anchor <= 0:
        return None, f"anchor {shape.anchor} rounds to {anchor} on this market (C-4)"
    prices = {0: anchor}
    for i in range(1, shape.above + 1):
        below = prices[i - 1]
        step = rules.tick_at(below) * shape.min_ticks
        prices[i] = max(rules.round_price(_raw(shape, pct, i)), rules.round_price(below + step, ROUND_CEILING))
    for i in range(-1, -shape.below - 1, -1):
        above = prices[i + 1]
        step = rules.tick_at(above) * shape.min_ticks
        price = min(rules.round_price(_raw(shape, pct, i)), rules.round_price(above - step, ROUND_FLOOR))
        if price <= 0 or (rules.min_price and price < rules.min_price):
            return None, (f"level {i} would be at {price}: the grid does not fit below the anchor {anchor} "
                          f"with {shape.below} levels at {pct:.4f}% (C-4)")
        prices[i] = price
    top = prices[shape.above]
    if rules.max_price and top > rules.max_price:
        return None, f"top level {top} is above the market's maximum price {rules.max_price} (C-4)"
    return prices, ""


class Volatility:
    """Realised volatility of the mid, sampled every `sample_ms` of exchange time, over `window`
    samples: the standard deviation of log returns, in percent."""

    def __init__(self, sample_ms: int, window: int):
        self.sample_ms = max(1, sample_ms)
        self.returns: deque[float] = deque(maxlen=max(2, window))
        self.last: tuple[int, float] | None = None

    def observe(self, mid: Decimal, time_ms: int) -> None:
        price = float(mid)
        if price <= 0:
            return
        if self.last is None:
            self.last = (time_ms, price)
            return
        last_ms, last_price = self.last
        if time_ms - last_ms < self.sample_ms:
            return
        self.returns.append(math.log(price / last_price))
        self.last = (time_ms, price)

    def pct(self) -> Decimal | None:
        """None until the window holds enough samples to mean something."""
        n = len(self.returns)
        if n < max(2, self.returns.maxlen // 2):
            return None
        mean = sum(self.returns) / n
        var = sum((r - mean) ** 2 for r in self.returns) / (n - 1)
        return Decimal(repr(math.sqrt(var) * 100))


def spacing_pct(configured: Decimal, multiplier: Decimal, volatility: Decimal | None) -> Decimal:
    """Volatility only ever widens the configured spacing; it never narrows it below the config."""
    if multiplier <= 0 or volatility is None:
        return configured
    return max(configured, (multiplier * volatility).quantize(Decimal("0.000001")))
