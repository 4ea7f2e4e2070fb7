"""Binance's request rules: errors with their real codes, texts and HTTP statuses, parameter parsing,
and the signed-request checks (API key, HMAC-SHA256 over totalParams, timestamp and recvWindow).

Pure functions over strings, shared by the REST handlers and the WebSocket API.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from decimal import Decimal
from urllib.parse import parse_qsl

__all__ = ["ApiError", "Params", "parse_params", "check_signed", "sign", "ws_payload", "TEXT", "CLIENT_ID"]

CLIENT_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_INT = re.compile(r"^-?[0-9]{1,20}$")
MAX_RECV_WINDOW = 60_000

TEXT = {
    -1007: "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    -1015: "Too many new orders; current limit is {limit} orders per {interval}.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1102: "Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    -1131: "recvWindow must be less than 60000",
    -2010: "NEW_ORDER_REJECTED",
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
}
AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
TOO_MUCH_WEIGHT = ("Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
                   "Please use WebSocket Streams for live updates to avoid polling the API.")
BANNED = ("Way too much request weight used; IP banned until {until}. Please use WebSocket Streams for live "
          "updates to avoid bans.")
INSUFFICIENT = "Account has insufficient balance for requested action."
WOULD_TAKE = "Order would immediately match and take."
DUPLICATE = "Duplicate order sent."
TRIGGER_NOW = "Order would trigger immediately."


class ApiError(Exception):
    """One Binance error answer: HTTP `status` and `{"code", "msg"}` (plus `data` for cancelReplace)."""

    def __init__(self, code: int, msg: str, status: int = 400, headers: dict | None = None,
                 data: dict | None = None):
        super().__init__(f"{code}: {msg}")
        self.code, self.msg, self.status, self.headers, self.data = code, msg, status, headers or {}, data

    def body(self) -> dict:
        out = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            out["data"] = self.data
        return out

    @classmethod
    def missing(cls, name: str) -> "ApiError":
        return cls(-1102, TEXT[-1102].format(name=name))


class Params:
    """A request's parameters (query string wins over body, as on Binance) with typed getters that
    raise the error Binance gives for that parameter."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def __contains__(self, name: str) -> bool:
        return self.values.get(name, "") != ""

    def str(self, name: str, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise ApiError.missing(name)
            return None
        return value

    def decimal(self, name: str, required: bool = False) -> Decimal | None:
        text = self.str(name, required)
        if text is None:
            return None
        if not _DECIMAL.match(text):
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                  f"'{_DECIMAL.pattern}'.")
        value = Decimal(text)
        if value != value.quantize(Decimal("0.00000001")):
            raise ApiError(-1111, f"Parameter '{name}' has too much precision.")
        return value

    def int(self, name: str, required: bool = False, default: int | None = None) -> int | None:
        text = self.str(name, required)
        if text is None:
            return default
        if not _INT.match(text):
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                  f"'^[0-9]{{1,20}}$'.")
        return int(text)

    def enum(self, name: str, allowed, code: int, text: str, required: bool = True,
             default: str | None = None) -> str | None:
        value = self.str(name, required and default is None)
        if value is None:
            return default
        if value not in allowed:
            raise ApiError(code, text)
        return value

    def client_id(self, name: str) -> str | None:
        value = self.str(name)
        if value is not None and not CLIENT_ID.match(value):
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                  f"'{CLIENT_ID.pattern}'.")
        return value

    def not_sent(self, *names: str) -> None:
        for name in names:
            if name in self:
                raise ApiError(-1106, f"Parameter '{name}' sent when not required.")


def parse_params(query: str, body: str) -> Params:
    """Query and form body as Binance reads them; a name repeated in one source is refused."""
    merged: dict[str, str] = {}
    for source in (body, query):                       # the query string wins
        seen: set[str] = set()
        for key, value in parse_qsl(source, keep_blank_values=True):
            if key in seen:
                raise ApiError(-1101, "Duplicate values for a parameter detected.")
            seen.add(key)
            merged[key] = value
    return Params(merged)


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _strip_signature(text: str) -> tuple[str, str | None]:
    """The text without its `signature=` pair (totalParams as signed), and the signature."""
    parts = text.split("&") if text else []
    rest = [p for p in parts if not p.startswith("signature=")]
    sigs = [p[len("signature="):] for p in parts if p.startswith("signature=")]
    return "&".join(rest), (sigs[0] if sigs else None)


def check_timestamp(params: Params, server_ms: int) -> None:
    timestamp = params.int("timestamp", required=True)
    window = params.int("recvWindow", default=5000)
    if window > MAX_RECV_WINDOW or window < 0:
        raise ApiError(-1131, TEXT[-1131])
    if timestamp >= server_ms + 1000:
        raise ApiError(-1021, AHEAD)
    if server_ms - timestamp > window:
        raise ApiError(-1021, TEXT[-1021])


def check_signed(api_key: str | None, secrets: dict[str, str], query: str, body: str, params: Params,
                 server_ms: int) -> str:
    """The account (its API key) a SIGNED request acts for, or the ApiError Binance answers."""
    account = check_key(api_key, secrets)
    check_timestamp(params, server_ms)
    query_part, query_sig = _strip_signature(query)
    body_part, body_sig = _strip_signature(body)
    signature = query_sig or body_sig
    if not signature:
        raise ApiError.missing("signature")
    expected = sign(secrets[account], query_part + body_part)
    if not hmac.compare_digest(expected.lower(), signature.lower()):
        raise ApiError(-1022, TEXT[-1022])
    return account


def check_key(api_key: str | None, secrets: dict[str, str]) -> str:
    if not api_key:
        raise ApiError(-2014, TEXT[-2014], status=401)
    if api_key not in secrets:
        raise ApiError(-2015, TEXT[-2015], status=401)
    return api_key


def ws_payload(params: dict) -> str:
    """The WebSocket API's signature payload: every param but `signature`, sorted, `k=v` joined by &."""
    return "&".join(f"{k}={_ws_value(v)}" for k, v in sorted(params.items()) if k != "signature")


def _ws_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


