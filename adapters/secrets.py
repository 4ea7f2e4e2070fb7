"""Secrets come from an environment variable or a 0600 file, never from the repo or a config value, and
never reach a log: they travel wrapped in `Secret`, whose repr is redacted."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path


class SecretError(Exception):
    """A secret is missing or stored unsafely; the message names where it was looked for."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a Secret is never pickled: read it where it is used")


def _read_private_file(path: Path, key: str) -> str:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SecretError(key, f"cannot read {path} ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(key, f"{path} is readable by others (mode {stat.S_IMODE(mode):o}): chmod 600 it")
    return path.read_text().strip()


def read_secret(env_name: str, file: str, key: str, password_env: str = "") -> Secret:
    """The value of `env_name` if set, else the content of `file` (mode 0600). A JSON file is an
    encrypted Ethereum keystore, decrypted with the password in `password_env`."""
    value = os.environ.get(env_name, "").strip() if env_name else ""
    if value:
        return Secret(value)
    if not file:
        raise SecretError(key, f"set the environment variable {env_name} or point the config at a 0600 file")
    path = Path(os.path.expanduser(file))
    text = _read_private_file(path, key)
    if text.startswith("{"):
        password = os.environ.get(password_env, "") if password_env else ""
        if not password:
            raise SecretError(key, f"{path} is an encrypted keystore: set {password_env or 'its password variable'}")
        from eth_account import Account
        try:
            return Secret("0x" + Account.decrypt(json.loads(text), password).hex().removeprefix("0x"))
        except (ValueError, KeyError) as exc:
            raise SecretError(key, f"cannot decrypt {path}: {exc}") from None
    if not text:
        raise SecretError(key, f"{path} is empty")
    return Secret(text)
