"""Build the configured venue adapter. Only the gateway calls this."""
from __future__ import annotations

from decimal import Decimal

from adapters.base import Exchange
from messages.types import MarketRules


def paper_rules(symbol: str, kind: str, quote: str) -> MarketRules:
    """Paper markets follow the real venue they imitate: Hyperliquid's BTC perp or Binance's BTCUSDT."""
    if kind == "perp":
        return MarketRules(symbol, symbol, quote, lot_size=Decimal("0.00001"), sig_figs=5,
                           max_price_decimals=1, min_notional=Decimal(10), max_orders=1000)
    return MarketRules(symbol, symbol.removesuffix(quote) or symbol, quote, lot_size=Decimal("0.00001"),
                       min_size=Decimal("0.00001"), tick_size=Decimal("0.01"), min_notional=Decimal(5),
                       max_orders=200)


def paper_settings(config, persist: bool = True):
    from adapters.paper import PaperSettings
    p = config.paper
    symbol = config.market.symbol
    balances = [(p.quote_asset, p.balance)]
    rules = paper_rules(symbol, p.kind, p.quote_asset)
    if p.base_balance > 0:
        balances.append((rules.base_asset, p.base_balance))
    return PaperSettings(
        symbol=symbol, kind=p.kind, rules=rules, data=p.data or None, seed=p.seed, speed=p.speed,
        balances=tuple(balances), maker_fee=p.maker_fee, taker_fee=p.taker_fee,
        partial_fills=p.partial_fills, leverage=p.leverage, start_price=p.start_price,
        state_file=str(config.state_path / "paper_venue.pkl") if persist else None)


def build_exchange(config) -> Exchange:
    venue = config.bot.exchange
    if venue == "paper":
        from adapters.paper import PaperExchange
        return PaperExchange(paper_settings(config))
    raise ValueError(f"exchange {venue!r} is not available in this build")
