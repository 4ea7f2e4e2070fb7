"""The venue's ledger: per-account asset balances (free and locked, as Binance keeps them) and perp
positions (signed size, average entry, realized PnL, fees), all in exact Decimal."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from messages.types import ZERO, Side

__all__ = ["Balance", "Position", "MarginSummary", "Ledger"]


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class Position:
    """A perp position. `fees` is what this market's fills cost in total (negative: net rebate)."""
    symbol: str
    size: Decimal = ZERO
    entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class MarginSummary:
    """Cross margin in one collateral asset: equity = cash + unrealized PnL; `used` holds the open
    positions (at the mark) and the non-reduce-only open orders (at their limit), each / leverage."""
    asset: str
    equity: Decimal
    used: Decimal

    @property
    def available(self) -> Decimal:
        return self.equity - self.used


class Ledger:
    """Balances and positions. Callers check funds first; the ledger only moves what it is told."""

    def __init__(self) -> None:
        self._balances: dict[str, dict[str, list[Decimal]]] = {}
        self._positions: dict[str, dict[str, list[Decimal]]] = {}

    # -- balances ----------------------------------------------------------------------------
    def _slot(self, account: str, asset: str) -> list[Decimal]:
        assets = self._balances.setdefault(account, {})
        slot = assets.get(asset)
        if slot is None:
            slot = assets[asset] = [ZERO, ZERO]
        return slot

    def fund(self, account: str, asset: str, amount: Decimal) -> None:
        """Deposit (or, with a negative amount, withdraw from the free balance)."""
        slot = self._slot(account, asset)
        if slot[0] + amount < 0:
            raise ValueError(f"{account} has only {slot[0]} {asset} free, cannot withdraw {-amount}")
        slot[0] += amount

    def free(self, account: str, asset: str) -> Decimal:
        return self._slot(account, asset)[0]

    def lock(self, account: str, asset: str, amount: Decimal) -> None:
        slot = self._slot(account, asset)
        slot[0] -= amount
        slot[1] += amount

    def unlock(self, account: str, asset: str, amount: Decimal) -> None:
        self.lock(account, asset, -amount)

    def balances(self, account: str) -> dict[str, Balance]:
        return {asset: Balance(asset, free, locked)
                for asset, (free, locked) in self._balances.get(account, {}).items()}

    def accounts(self) -> list[str]:
        return sorted(set(self._balances) | set(self._positions))

    # -- spot ----------------------------------------------------------------------------------
    def apply_spot_fill(self, account: str, base: str, quote: str, side: Side, limit: Decimal,
                        price: Decimal, size: Decimal, fee_rate: Decimal,
                        fee_quantum: Decimal | None = None) -> tuple[Decimal, str]:
        """Settle a spot fill against what the order locked; the fee comes out of the received asset
        (rounded half up to `fee_quantum` when given). A buy locked limit*size quote: the part not
        spent at a better price goes back to free."""
        if side is Side.BUY:
            quote_slot = self._slot(account, quote)
            quote_slot[1] -= limit * size
            quote_slot[0] += (limit - price) * size
            fee = _round(size * fee_rate, fee_quantum)
            self._slot(account, base)[0] += size - fee
            return fee, base
        self._slot(account, base)[1] -= size
        proceeds = price * size
        fee = _round(proceeds * fee_rate, fee_quantum)
        self._slot(account, quote)[0] += proceeds - fee
        return fee, quote

    # -- perps ---------------------------------------------------------------------------------
    def _pos(self, account: str, symbol: str) -> list[Decimal]:
        positions = self._positions.setdefault(account, {})
        pos = positions.get(symbol)
        if pos is None:
            pos = positions[symbol] = [ZERO, ZERO, ZERO, ZERO]  # size, entry, realized, fees
        return pos

    def position_size(self, account: str, symbol: str) -> Decimal:
        pos = self._positions.get(account, {}).get(symbol)
        return pos[0] if pos else ZERO

    def position(self, account: str, symbol: str, mark: Decimal | None = None) -> Position:
        size, entry, realized, fees = self._pos(account, symbol)
        upnl = size * (mark - entry) if (mark is not None and size) else ZERO
        return Position(symbol, size, entry, realized, fees, upnl)

    def positions(self, account: str) -> dict[str, tuple[Decimal, Decimal]]:
        """symbol -> (signed size, entry) for every perp market the account touched."""
        return {s: (p[0], p[1]) for s, p in self._positions.get(account, {}).items()}

    def apply_perp_fill(self, account: str, symbol: str, collateral: str, side: Side,
                        price: Decimal, size: Decimal, fee: Decimal) -> tuple[Decimal, Decimal]:
        """Move the position by a fill; realized PnL and the fee settle in the collateral asset.
        Returns (position before, PnL realized by this fill)."""
        pos = self._pos(account, symbol)
        start, entry = pos[0], pos[1]
        delta = size if side is Side.BUY else -size
        pnl = ZERO
        if start == 0 or (start > 0) == (delta > 0):
            new = start + delta
            pos[1] = (abs(start) * entry + size * price) / abs(new)
        else:
            closed = min(size, abs(start))
            pnl = closed * (price - entry) if start > 0 else closed * (entry - price)
            new = start + delta
            if new == 0:
                pos[1] = ZERO
            elif (new > 0) != (start > 0):
                pos[1] = price
        pos[0] = new
        pos[2] += pnl
        pos[3] += fee
        self._slot(account, collateral)[0] += pnl - fee
        return start, pnl

    # -- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "balances": {a: {asset: [str(f), str(lk)] for asset, (f, lk) in assets.items()}
                         for a, assets in self._balances.items()},
            "positions": {a: {s: [str(x) for x in pos] for s, pos in syms.items()}
                          for a, syms in self._positions.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Ledger":
        ledger = cls()
        ledger._balances = {a: {asset: [Decimal(f), Decimal(lk)] for asset, (f, lk) in assets.items()}
                            for a, assets in data["balances"].items()}
        ledger._positions = {a: {s: [Decimal(x) for x in pos] for s, pos in syms.items()}
                             for a, syms in data["positions"].items()}
        return ledger


def _round(value: Decimal, quantum: Decimal | None) -> Decimal:
    return value if quantum is None else value.quantize(quantum, rounding=ROUND_HALF_UP)
