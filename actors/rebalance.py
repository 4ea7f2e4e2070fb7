"""Getting a spot grid out of a funds deadlock (B-2.1, B-2.2).

A spot grid that sold all its base cannot place its sells, one that spent its quote cannot place its
buys. When grid intents on one side are refused for funds while the other asset has a surplus, one
rebalance order converts part of the surplus: a post-only limit at the touch first; a market order
only if config allows it, and only after the limit attempts. Attempts are bounded and spaced by a
cool-down; a rebalance too small for the market (dust) is not tried at all. When nothing is left to
try, the grid stays empty on that side and the reason is logged and shown in status. No recursion:
each attempt is one order, started from a refusal or a timer, never from another attempt.
"""
from __future__ import annotations

from decimal import Decimal

from loguru import logger

from messages.commands import OrderSpec
from messages.types import ZERO, MarketRules, Origin, Side, client_order_id


class Rebalancer:
    def __init__(self, bot_id: str, symbol: str, attempts: int, cooldown_s: float, market_allowed: bool,
                 slippage_pct: Decimal = Decimal("0.5")):
        self.bot_id, self.symbol = bot_id, symbol
        self.max_attempts, self.cooldown_s, self.market_allowed = attempts, cooldown_s, market_allowed
        self.slippage = slippage_pct / 100
        self.attempts = 0
        self.market_used = False
        self.next_at = 0.0
        self.live: str | None = None          # the rebalance order in flight, if any
        self.gave_up = ""

    def propose(self, short_side: Side, need: Decimal, free_base: Decimal, free_quote: Decimal,
                mid: Decimal | None, rules: MarketRules | None, version: int, now: float) -> OrderSpec | None:
        """`short_side` is the grid side refused for funds; `need` the base size it wanted."""
        if mid is None or rules is None or self.live or now < self.next_at or self.gave_up:
            return None
        # refused sells need base: buy it with half the free quote at most; refused buys need quote
        side = Side.BUY if short_side is Side.SELL else Side.SELL
        cap = free_quote / 2 / mid if side is Side.BUY else free_base / 2
        size = rules.round_size(min(need, cap))
        if size <= 0 or size < rules.min_size or size * mid < rules.min_notional:
            return self._give_up(f"rebalance of {min(need, cap)} {rules.base_asset} is below the market's "
                                 f"minimum (dust): the grid stays without its {short_side.value}s")
        market = False
        if self.attempts >= self.max_attempts:
            if not self.market_allowed or self.market_used:
                return self._give_up(f"{self.attempts} rebalance attempts did not free funds for the "
                                     f"{short_side.value}s; the grid stays without them")
            market, self.market_used = True, True
        self.attempts += 1
        self.next_at = now + self.cooldown_s
        if market:
            price = rules.round_price(mid * (1 + self.slippage if side is Side.BUY else 1 - self.slippage))
        else:
            price = rules.round_price_passive(mid, side)       # at the touch, never through it
        cid = client_order_id(self.bot_id, -2, self.attempts, side, version, int(market))
        self.live = cid
        logger.info("rebalance attempt {}: {} {} at {} ({})", self.attempts, side.value, size, price,
                    "market" if market else "limit at the touch")
        return OrderSpec(cid, self.symbol, side, price, size, Origin.REBALANCE, None, version,
                         post_only=not market)

    def _give_up(self, reason: str) -> None:
        if not self.gave_up:
            self.gave_up = reason
            logger.error(reason)
        return None

    def ended(self, client_id: str, filled: Decimal = ZERO) -> None:
        """The rebalance order is over; a fill resets the attempts (the deadlock is broken)."""
        if client_id != self.live:
            return
        self.live = None
        if filled > 0:
            self.attempts, self.gave_up = 0, ""

    def expired(self, now: float) -> str | None:
        """A resting rebalance order older than the cool-down is cancelled, making room for the next."""
        return self.live if self.live and now >= self.next_at else None

    def view(self) -> dict:
        return {"attempts": self.attempts, "live": self.live, "market_used": self.market_used,
                "gave_up": self.gave_up}
