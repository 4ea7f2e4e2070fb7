"""Secrets come from the environment or a 0600 file and never show in a repr; request budgets refuse
before the venue would."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

from adapters.base import RateLimited
from adapters.budget import ActionBudget, WeightBudget
from adapters.secrets import SecretError, read_secret
from tests.conftest import REPO

pytestmark = pytest.mark.timeout(60)
KEY = "0x" + "11" * 32


def test_secret_from_environment_is_redacted_and_not_picklable(monkeypatch):
    monkeypatch.setenv("GB_TEST_KEY", KEY)
    secret = read_secret("GB_TEST_KEY", "", "k")
    assert secret.reveal() == KEY
    assert KEY not in repr(secret) and KEY not in str(secret) and KEY not in f"{secret}"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_secret_file_must_be_private(tmp_path, monkeypatch):
    monkeypatch.delenv("GB_TEST_KEY", raising=False)
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    os.chmod(path, 0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        read_secret("GB_TEST_KEY", str(path), "k")
    os.chmod(path, 0o600)
    assert read_secret("GB_TEST_KEY", str(path), "k").reveal() == KEY


def test_encrypted_keystore_needs_its_password(tmp_path, monkeypatch):
    from eth_account import Account
    path = tmp_path / "keystore.json"
    path.write_text(__import__("json").dumps(Account.encrypt(KEY, "pw", iterations=2)))
    os.chmod(path, 0o600)
    monkeypatch.delenv("GB_TEST_PW", raising=False)
    with pytest.raises(SecretError, match="GB_TEST_PW"):
        read_secret("", str(path), "k", "GB_TEST_PW")
    monkeypatch.setenv("GB_TEST_PW", "pw")
    assert read_secret("", str(path), "k", "GB_TEST_PW").reveal() == KEY


def test_missing_secret_names_the_variable(monkeypatch):
    monkeypatch.delenv("GB_TEST_KEY", raising=False)
    with pytest.raises(SecretError, match="GB_TEST_KEY"):
        read_secret("GB_TEST_KEY", "", "hyperliquid.private_key_env")


def test_gridbot_run_without_the_key_exits_2_naming_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GRIDBOT_HL_PRIVATE_KEY"}
    result = subprocess.run([sys.executable, "supervisor.py", "run", "--config",
                             str(REPO / "config" / "hyperliquid.example.toml"), "--state-dir", str(tmp_path)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "GRIDBOT_HL_PRIVATE_KEY" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_weight_budget_refuses_with_the_time_until_room():
    now = [0.0]
    budget = WeightBudget(100, 60.0, clock=lambda: now[0])
    budget.spend(60)
    now[0] = 10.0
    budget.spend(40)
    with pytest.raises(RateLimited) as err:
        budget.spend(1)
    assert err.value.retry_after == pytest.approx(50.0)
    now[0] = 60.0
    budget.spend(50)
    assert budget.used() == 90


def test_action_budget_grows_with_volume():
    budget = ActionBudget(initial=3)
    budget.spend(3)
    with pytest.raises(RateLimited):
        budget.spend(1)
    budget.traded(2.5)
    budget.spend(2)
    assert budget.remaining == pytest.approx(0.5)
