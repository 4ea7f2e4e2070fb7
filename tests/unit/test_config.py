"""Config: the defaults load; a bad value exits 2 with one line naming the file and key, no traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from config.schema import DEFAULT_CONFIG, BotConfig, ConfigError, load

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


def test_default_paper_config_loads_with_decimal_money():
    config = load()
    assert config.bot.exchange == "paper"
    assert isinstance(config.grid.order_size, Decimal)
    assert config.grid.levels_per_side > 0


def test_every_shipped_config_is_valid():
    for path in sorted((REPO / "config").glob("*.toml")):
        assert isinstance(load(path), BotConfig), path


def test_default_config_documents_every_key():
    text = DEFAULT_CONFIG.read_text()
    config = BotConfig()
    for section in ("bot", "market", "paper", "grid", "risk", "timing"):
        for key in type(getattr(config, section)).__dataclass_fields__:
            assert f"\n{key} =" in text, f"{section}.{key} is not in paper.toml"


def test_hyperliquid_example_documents_every_hyperliquid_key():
    text = (REPO / "config" / "hyperliquid.example.toml").read_text()
    for key in type(BotConfig().hyperliquid).__dataclass_fields__:
        assert f"\n{key} =" in text, f"hyperliquid.{key} is not in hyperliquid.example.toml"


@pytest.mark.parametrize("body, key, problem", [
    ('[grid]\nlevels_per_side = "ten"\n', "grid.levels_per_side", "expected an integer"),
    ('[grid]\nlevel_count = 10\n', "grid.level_count", "unknown key"),
    ('[grid]\nlevels_per_side = -3\n', "grid.levels_per_side", "must be greater than 0"),
    ('[risk]\nmax_position = "lots"\n', "risk.max_position", "expected a decimal number"),
    ('[bot]\nexchange = "kraken"\n', "bot.exchange", "must be one of"),
    ('[hyperliquid]\ndead_man_s = 2\n', "hyperliquid.dead_man_s", "at least 5 seconds"),
    ('[grid]\nlower = 30000\n', "grid.upper", "set both grid.lower and grid.upper"),
    ('[grid]\nlower = 30000\nupper = 29000\n', "grid.upper", "must be above grid.lower"),
    ('[grid]\nbias = "up"\n', "grid.bias", "must be one of neutral, long, short"),
    ('[risk]\nstop_loss_price = 40000\ntake_profit_price = 39000\n', "risk.take_profit_price",
     "must be above risk.stop_loss_price"),
])
def test_bad_config_is_refused_by_the_loader(tmp_path, body, key, problem):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert err.value.key == key and problem in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("body, key", [
    ('[grid]\nlevels_per_side = "ten"\n', "grid.levels_per_side"),
    ('[grid]\nlevel_count = 10\n', "grid.level_count"),
    ('[grid]\nlevels_per_side = -3\n', "grid.levels_per_side"),
])
def test_gridbot_run_with_bad_config_exits_2_with_one_line(tmp_path, body, key):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    proc = subprocess.run([sys.executable, str(REPO / "supervisor.py"), "run", "--config", str(path),
                           "--state-dir", str(tmp_path / "state")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert key in lines[0] and str(path) in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "state").exists()


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(tmp_path / "nope.toml")
    assert "cannot read" in str(err.value)
