"""The config schema: TOML in, a frozen, picklable BotConfig out, or a ConfigError that names the file,
the key and what is wrong (the CLI prints it on one line and exits 2).

Every time constant has a key and a default here (B-3.1).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = CONFIG_DIR / "paper.toml"


class ConfigError(Exception):
    def __init__(self, file: str | Path, key: str, problem: str):
        super().__init__(f"{file}: {key}: {problem}")
        self.file, self.key, self.problem = str(file), key, problem


def _positive(v) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _non_negative(v) -> str | None:
    return None if v >= 0 else "must not be negative"


def _dead_man(v) -> str | None:
    return None if v == 0 or v >= 5 else "must be 0 (off) or at least 5 seconds (the venue's minimum)"


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(v):
        return None if v in choices else f"must be one of {', '.join(choices)}"
    return check


def _check(*checks):
    return {"checks": checks}


@dataclass(frozen=True, slots=True)
class BotSection:
    id: str = "paper-btc"
    exchange: str = field(default="paper", metadata=_check(_one_of("paper", "hyperliquid", "binance")))
    state_dir: str = "~/.gridbot/{id}"
    cancel_on_shutdown: bool = True
    admin_port: int = field(default=0, metadata=_check(_non_negative))
    metrics_port: int = field(default=0, metadata=_check(_non_negative))
    log_level: str = field(default="INFO", metadata=_check(_one_of("DEBUG", "INFO", "WARNING", "ERROR")))


@dataclass(frozen=True, slots=True)
class MarketSection:
    symbol: str = "BTC"


@dataclass(frozen=True, slots=True)
class PaperSection:
    data: str = ""
    seed: int = 7
    speed: float = field(default=120.0, metadata=_check(_positive))
    kind: str = field(default="perp", metadata=_check(_one_of("perp", "spot")))
    quote_asset: str = "USDC"
    balance: Decimal = field(default=Decimal("10000"), metadata=_check(_positive))
    base_balance: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    leverage: int = field(default=10, metadata=_check(_positive))
    maker_fee: Decimal = Decimal("0.00015")
    taker_fee: Decimal = Decimal("0.00045")
    partial_fills: bool = False
    start_price: Decimal = field(default=Decimal("40000"), metadata=_check(_positive))
    reaction_hold_s: float = field(default=0.5, metadata=_check(_non_negative))


@dataclass(frozen=True, slots=True)
class GridSection:
    levels_per_side: int = field(default=10, metadata=_check(_positive))
    spacing: str = field(default="arithmetic", metadata=_check(_one_of("arithmetic", "geometric")))
    spacing_pct: Decimal = field(default=Decimal("0.15"), metadata=_check(_positive))
    min_spacing_ticks: int = field(default=2, metadata=_check(_positive))
    order_size: Decimal = field(default=Decimal("0.002"), metadata=_check(_positive))
    order_notional: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    anchor: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    lower: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    upper: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    bias: str = field(default="neutral", metadata=_check(_one_of("neutral", "long", "short")))
    min_width_pct: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    volatility_multiplier: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    volatility_sample_s: float = field(default=60.0, metadata=_check(_positive))
    volatility_window: int = field(default=30, metadata=_check(_positive))
    trail_after_s: float = field(default=0.0, metadata=_check(_non_negative))
    counter_retry_limit: int = field(default=5, metadata=_check(_positive))
    counter_retry_initial_s: float = field(default=1.0, metadata=_check(_positive))
    counter_retry_max_s: float = field(default=30.0, metadata=_check(_positive))
    emergency_flatten: bool = False
    rebalance_attempts: int = field(default=3, metadata=_check(_non_negative))
    rebalance_cooldown_s: float = field(default=60.0, metadata=_check(_positive))
    rebalance_market: bool = False

    def validate(self, file) -> None:
        if (self.lower > 0) != (self.upper > 0):
            raise ConfigError(file, "grid.upper" if self.lower > 0 else "grid.lower",
                              "set both grid.lower and grid.upper (or neither)")
        if self.lower > 0 and self.upper <= self.lower:
            raise ConfigError(file, "grid.upper", f"must be above grid.lower ({self.lower}), got {self.upper}")


@dataclass(frozen=True, slots=True)
class RiskSection:
    max_position: Decimal = field(default=Decimal("0.05"), metadata=_check(_positive))
    max_open_orders: int = field(default=60, metadata=_check(_positive))
    drift_tolerance: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    max_notional: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    max_skew: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    max_drawdown: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    stop_loss_price: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    take_profit_price: Decimal = field(default=Decimal("0"), metadata=_check(_non_negative))
    flatten_slippage_pct: Decimal = field(default=Decimal("0.5"), metadata=_check(_positive))
    protective_orders: bool = False
    breaker_network_errors: int = field(default=5, metadata=_check(_positive))
    breaker_rejections: int = field(default=20, metadata=_check(_positive))
    breaker_window_s: float = field(default=60.0, metadata=_check(_positive))
    breaker_cooldown_s: float = field(default=30.0, metadata=_check(_positive))

    def validate(self, file) -> None:
        if 0 < self.take_profit_price <= self.stop_loss_price:
            raise ConfigError(file, "risk.take_profit_price",
                              f"must be above risk.stop_loss_price ({self.stop_loss_price}), got {self.take_profit_price}")


@dataclass(frozen=True, slots=True)
class TimingSection:
    batch_window_ms: int = field(default=2, metadata=_check(_non_negative))
    batch_max_orders: int = field(default=40, metadata=_check(_positive))
    batch_window_fast_ms: int = field(default=5, metadata=_check(_non_negative))
    fast_move_pct: Decimal = field(default=Decimal("0.2"), metadata=_check(_positive))
    pump_interval_s: float = field(default=0.1, metadata=_check(_positive))
    heartbeat_interval_s: float = field(default=1.0, metadata=_check(_positive))
    heartbeat_timeout_s: float = field(default=10.0, metadata=_check(_positive))
    audit_interval_s: float = field(default=30.0, metadata=_check(_positive))
    audit_soon_s: float = field(default=1.0, metadata=_check(_positive))
    audit_burst_fills: int = field(default=10, metadata=_check(_positive))
    backfill_margin_ms: int = field(default=5000, metadata=_check(_non_negative))
    status_query_delay_s: float = field(default=1.0, metadata=_check(_positive))
    status_query_limit: int = field(default=5, metadata=_check(_positive))
    restart_backoff_initial_s: float = field(default=0.2, metadata=_check(_positive))
    restart_backoff_max_s: float = field(default=5.0, metadata=_check(_positive))
    restart_limit: int = field(default=5, metadata=_check(_positive))
    restart_window_s: float = field(default=60.0, metadata=_check(_positive))
    startup_timeout_s: float = field(default=30.0, metadata=_check(_positive))
    shutdown_timeout_s: float = field(default=15.0, metadata=_check(_positive))
    exchange_timeout_s: float = field(default=10.0, metadata=_check(_positive))


@dataclass(frozen=True, slots=True)
class HyperliquidSection:
    """Where and as whom to trade on Hyperliquid. The private key itself is never a config value."""
    base_url: str = "https://api.hyperliquid.xyz"
    private_key_env: str = "GRIDBOT_HL_PRIVATE_KEY"
    keystore: str = ""
    keystore_password_env: str = "GRIDBOT_HL_KEYSTORE_PASSWORD"
    account_address: str = ""
    leverage: int = field(default=0, metadata=_check(_non_negative))
    dead_man_s: float = field(default=60.0, metadata=_check(_dead_man))
    dead_man_refresh_s: float = field(default=20.0, metadata=_check(_positive))
    stream_stale_s: float = field(default=10.0, metadata=_check(_positive))
    reconnect_max_s: float = field(default=10.0, metadata=_check(_positive))
    weight_per_min: int = field(default=1200, metadata=_check(_positive))


@dataclass(frozen=True, slots=True)
class BinanceSection:
    """Where and as whom to trade on Binance spot. The API key and secret are never config values: they
    are read from the environment variables named here, or from 0600 files."""
    base_url: str = "https://api.binance.com"
    api_key_env: str = "GRIDBOT_BINANCE_API_KEY"
    api_secret_env: str = "GRIDBOT_BINANCE_API_SECRET"
    api_key_file: str = ""
    api_secret_file: str = ""
    recv_window_ms: int = field(default=5000, metadata=_check(
        lambda v: None if 0 < v <= 60000 else "must be between 1 and 60000 ms (Binance's maximum)"))
    stream_check_s: float = field(default=10.0, metadata=_check(_positive))
    reconnect_max_s: float = field(default=10.0, metadata=_check(_positive))


SECTIONS = {"bot": BotSection, "market": MarketSection, "paper": PaperSection, "grid": GridSection,
            "risk": RiskSection, "timing": TimingSection,
            "hyperliquid": HyperliquidSection, "binance": BinanceSection}


@dataclass(frozen=True, slots=True)
class BotConfig:
    bot: BotSection = BotSection()
    market: MarketSection = MarketSection()
    paper: PaperSection = PaperSection()
    grid: GridSection = GridSection()
    risk: RiskSection = RiskSection()
    timing: TimingSection = TimingSection()
    hyperliquid: HyperliquidSection = HyperliquidSection()
    binance: BinanceSection = BinanceSection()
    source: str = "<defaults>"

    @property
    def state_path(self) -> Path:
        return Path(os.path.expanduser(self.bot.state_dir.format(id=self.bot.id))).resolve()

    def with_overrides(self, **sections: dict) -> "BotConfig":
        """A copy with some keys replaced, e.g. with_overrides(bot={'state_dir': '/tmp/x'})."""
        changes = {name: replace(getattr(self, name), **values) for name, values in sections.items()}
        return replace(self, **changes)


def _coerce(file: Path, key: str, typ: str, value: Any) -> Any:
    wrong = ConfigError(file, key, f"expected {_TYPE_NAMES[typ]}, got {type(value).__name__} {value!r}")
    if typ == "bool":
        if not isinstance(value, bool):
            raise wrong
        return value
    if typ == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        return value
    if typ == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        return float(value)
    if typ == "str":
        if not isinstance(value, str):
            raise wrong
        return value
    if typ == "Decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise wrong
        try:
            number = Decimal(repr(value) if isinstance(value, float) else str(value))
        except InvalidOperation:
            raise wrong from None
        if not number.is_finite():
            raise wrong
        return number
    raise AssertionError(typ)


_TYPE_NAMES = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
               "Decimal": "a decimal number"}


def parse(data: dict, file: Path) -> BotConfig:
    sections = {}
    for name, value in data.items():
        if name not in SECTIONS:
            raise ConfigError(file, name, f"unknown section (known: {', '.join(SECTIONS)})")
        if not isinstance(value, dict):
            raise ConfigError(file, name, "expected a [section] table")
        cls = SECTIONS[name]
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, raw in value.items():
            dotted = f"{name}.{key}"
            if key not in known:
                raise ConfigError(file, dotted, f"unknown key (known: {', '.join(known)})")
            f = known[key]
            typ = f.type if isinstance(f.type, str) else f.type.__name__
            coerced = _coerce(file, dotted, typ, raw)
            for check in f.metadata.get("checks", ()):
                problem = check(coerced)
                if problem:
                    raise ConfigError(file, dotted, f"{problem}, got {raw!r}")
            values[key] = coerced
        sections[name] = cls(**values)
        validate = getattr(sections[name], "validate", None)
        if validate is not None:
            validate(file)
    config = BotConfig(**sections, source=str(file))
    if config.risk.protective_orders and config.bot.exchange == "hyperliquid":
        raise ConfigError(file, "risk.protective_orders", "protective trigger orders are not supported on "
                                                          "hyperliquid yet (paper only)")
    return config


def load(path: str | Path | None = None) -> BotConfig:
    """Load and validate a config file (the paper default when None)."""
    file = Path(path) if path else DEFAULT_CONFIG
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(file, "-", f"cannot read the file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "-", f"not valid TOML ({exc})") from None
    return parse(data, file)
