"""Binance in the config and on the command line: every [binance] key is documented in the example,
the example loads, a missing API key stops `gridbot run` with one line naming the variable, and
--base-url points the adapter at a local server."""
from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import pytest

from actors import launcher
from adapters.factory import binance_keys, binance_settings
from config import schema
from config.schema import BotConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "binance.example.toml"
pytestmark = pytest.mark.timeout(30)


def test_binance_example_documents_every_binance_key():
    text = EXAMPLE.read_text()
    for key in type(BotConfig().binance).__dataclass_fields__:
        assert f"\n{key} =" in text, f"binance.{key} is not in binance.example.toml"


def test_binance_example_loads_and_builds_settings():
    config = schema.load(EXAMPLE)
    assert config.bot.exchange == "binance" and config.market.symbol == "BTCUSDT"
    settings = binance_settings(config)
    assert (settings.base_url, settings.symbol, settings.recv_window) == ("https://api.binance.com", "BTCUSDT", 5000)
    api, ws_api, stream = settings.urls()
    assert (api, ws_api, stream) == ("https://api.binance.com/api", "wss://ws-api.binance.com:443/ws-api/v3",
                                     "wss://stream.binance.com:9443/")


def test_a_local_base_url_derives_the_websocket_urls():
    config = schema.load(EXAMPLE).with_overrides(binance={"base_url": "http://127.0.0.1:8898/"})
    assert binance_settings(config).urls() == ("http://127.0.0.1:8898/api", "ws://127.0.0.1:8898/ws-api/v3",
                                               "ws://127.0.0.1:8898/")


@pytest.mark.parametrize("body, problem", [
    ("[binance]\nrecv_window_ms = 70000\n", "between 1 and 60000"),
    ("[binance]\nstream_check_s = 0\n", "greater than 0"),
    ("[binance]\napi_key = \"abc\"\n", "unknown key"),
])
def test_bad_binance_config_is_refused(tmp_path, body, problem):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(schema.ConfigError, match=problem):
        schema.load(path)


def _args(config: Path, base_url: str | None = None):
    return argparse.Namespace(config=str(config), state_dir=None, data=None, base_url=base_url, speed=None)


def test_missing_api_key_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("GRIDBOT_BINANCE_API_KEY", raising=False)
    monkeypatch.setenv("GRIDBOT_BINANCE_API_SECRET", "s")
    with pytest.raises(schema.ConfigError) as info:
        launcher.load_config(_args(EXAMPLE))
    assert "GRIDBOT_BINANCE_API_KEY" in str(info.value) and "\n" not in str(info.value)


def test_keys_from_0600_files_and_base_url_override(tmp_path, monkeypatch):
    monkeypatch.delenv("GRIDBOT_BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("GRIDBOT_BINANCE_API_SECRET", raising=False)
    key, secret = tmp_path / "key", tmp_path / "secret"
    for path, text in ((key, "KEY123\n"), (secret, "SECRET456\n")):
        path.write_text(text)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    config_path = tmp_path / "bn.toml"
    config_path.write_text(EXAMPLE.read_text().replace('api_key_file = ""', f'api_key_file = "{key}"')
                           .replace('api_secret_file = ""', f'api_secret_file = "{secret}"'))
    config = launcher.load_config(_args(config_path, "http://127.0.0.1:9/"))
    assert config.binance.base_url == "http://127.0.0.1:9"
    api_key, api_secret = binance_keys(config)
    assert (api_key.reveal(), api_secret.reveal()) == ("KEY123", "SECRET456")
    assert "KEY123" not in repr(api_key) and "SECRET456" not in repr(api_secret)
    os.chmod(secret, 0o644)
    with pytest.raises(schema.ConfigError, match="chmod 600"):
        launcher.load_config(_args(config_path))


def test_gridbot_run_exits_2_with_one_line_when_the_secret_is_missing(tmp_path):
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBOT_BINANCE")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, str(REPO / "supervisor.py"), "run", "--config", str(EXAMPLE),
                           "--state-dir", str(tmp_path / "state")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "GRIDBOT_BINANCE_API_KEY" in lines[0], proc.stderr
