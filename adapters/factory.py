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


def hyperliquid_key(config):
    """The private key, from the environment or a 0600 file (SecretError says where it looked)."""
    from adapters.secrets import read_secret
    h = config.hyperliquid
    return read_secret(h.private_key_env, h.keystore, "hyperliquid.private_key_env", h.keystore_password_env)


def hyperliquid_settings(config):
    from adapters.hyperliquid import HyperliquidSettings
    h = config.hyperliquid
    return HyperliquidSettings(
        base_url=h.base_url.rstrip("/"), symbol=config.market.symbol, account_address=h.account_address,
        timeout_s=config.timing.exchange_timeout_s, dead_man_s=h.dead_man_s,
        dead_man_refresh_s=h.dead_man_refresh_s, stream_stale_s=h.stream_stale_s,
        reconnect_max_s=h.reconnect_max_s, weight_per_min=h.weight_per_min, leverage=h.leverage)


def binance_keys(config):
    """(API key, API secret), each from its environment variable or a 0600 file (SecretError says where
    it looked)."""
    from adapters.secrets import read_secret
    b = config.binance
    return (read_secret(b.api_key_env, b.api_key_file, "binance.api_key_env"),
            read_secret(b.api_secret_env, b.api_secret_file, "binance.api_secret_env"))


def binance_settings(config):
    from adapters.binance import BinanceSettings
    b = config.binance
    return BinanceSettings(
        base_url=b.base_url.rstrip("/"), symbol=config.market.symbol, recv_window=b.recv_window_ms,
        timeout_s=config.timing.exchange_timeout_s, stream_check_s=b.stream_check_s,
        reconnect_max_s=b.reconnect_max_s)


def build_exchange(config) -> Exchange:
    venue = config.bot.exchange
    if venue == "paper":
        from adapters.paper import PaperExchange
        return PaperExchange(paper_settings(config))
    if venue == "hyperliquid":
        from adapters.hyperliquid import HyperliquidExchange
        return HyperliquidExchange(hyperliquid_settings(config), hyperliquid_key(config))
    if venue == "binance":
        from adapters.binance import BinanceExchange
        return BinanceExchange(binance_settings(config), *binance_keys(config))
    raise ValueError(f"exchange {venue!r} is not available in this build")
