"""POST /exchange: signature recovery, nonces, and the L1 actions the bot uses.

The body is parsed preserving key order (the signature covers msgpack(action) in the client's order),
the signer is recovered as the SDK signs for a non-mainnet URL, and an address that is not a funded user
is refused with the venue's own text, as a wrong key on the real venue is.
"""
from __future__ import annotations

import bisect
import json

from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action

from sim.hyperliquid import protocol as P
from sim.hyperliquid.venue import HlVenue

__all__ = ["handle_exchange", "BadRequest", "check_nonce", "NONCES_KEPT", "DESERIALIZE"]

NONCES_KEPT = 100
_DAY = 86_400_000
DESERIALIZE = "Failed to deserialize the JSON body into the target type"


class BadRequest(ValueError):
    """A body the venue cannot deserialize: HTTP 422 with the real server's text."""


def _ok(kind: str, statuses: list | None = None) -> dict:
    if statuses is None:
        return {"status": "ok", "response": {"type": kind}}
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def _err(text: str) -> dict:
    return {"status": "err", "response": text}


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_nonce(kept: list[int], nonce: int, now: int) -> str | None:
    """Hyperliquid's rule: the 100 highest nonces per signer are kept; a new one must be unused, larger
    than the smallest kept (once 100 are kept) and within (now - 2 days, now + 1 day). Records it."""
    if not now - 2 * _DAY < nonce < now + _DAY:
        return f"Invalid nonce: {nonce} is too far from the current time {now}."
    index = bisect.bisect_left(kept, nonce)
    if index < len(kept) and kept[index] == nonce:
        return f"Invalid nonce: duplicate nonce {nonce}."
    if len(kept) >= NONCES_KEPT and nonce <= kept[0]:
        return f"Invalid nonce: {nonce} is lower than the lowest kept nonce {kept[0]}."
    kept.insert(index, nonce)
    if len(kept) > NONCES_KEPT:
        del kept[0]
    return None


def parse_body(raw: bytes) -> tuple[dict, int, dict, object, object]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(DESERIALIZE) from None
    if not isinstance(body, dict):
        raise BadRequest(DESERIALIZE)
    action, nonce, signature = body.get("action"), body.get("nonce"), body.get("signature")
    if (not isinstance(action, dict) or not isinstance(action.get("type"), str) or not _int(nonce)
            or not isinstance(signature, dict) or not {"r", "s", "v"} <= set(signature)):
        raise BadRequest(DESERIALIZE)
    return action, nonce, signature, body.get("vaultAddress"), body.get("expiresAfter")


def recover(action: dict, signature: dict, vault, nonce: int, expires_after) -> str | None:
    try:
        return recover_agent_or_user_from_l1_action(action, signature, vault, nonce, expires_after,
                                                    False).lower()
    except Exception:   # any malformed signature recovers no one
        return None


def handle_exchange(venue: HlVenue, raw: bytes) -> dict:
    """Run one signed action; the answer is HTTP 200 JSON (BadRequest for an unreadable body, checked
    before anything is recorded, so a 422 never consumed a nonce or changed an order)."""
    action, nonce, signature, vault, expires_after = parse_body(raw)
    if expires_after is not None and not _int(expires_after):
        raise BadRequest(DESERIALIZE)
    run = _prepare(action)
    signer = recover(action, signature, vault, nonce, expires_after)
    if signer is None or signer not in venue.users:
        return _err(f"User or API Wallet {signer or '0x0000000000000000000000000000000000000000'} "
                    "does not exist.")
    now = venue.now()
    if expires_after is not None and now > expires_after:
        return _err(f"Action expired at {expires_after}, now {now}.")
    if vault is not None:
        return _err("Vault and sub-account trading is not supported by this simulator.")
    text = check_nonce(venue.nonces.setdefault(signer, []), nonce, now)
    if text is not None:
        return _err(text)
    venue.dirty = True
    return run(venue, signer, now)


def _prepare(action: dict):
    """Validate the action's shape and return what runs it: (venue, user, now) -> answer."""
    kind = action["type"]
    if kind == "order":
        orders = _list(action, "orders")
        return lambda v, u, now: _ok("order", [_place(v, u, wire, now) for wire in orders])
    if kind in ("cancel", "cancelByCloid"):
        keys = ("a", "o") if kind == "cancel" else ("asset", "cloid")
        refs = [_cancel_ref(c.get(keys[0]), c.get(keys[1]), kind == "cancelByCloid")
                for c in _list(action, "cancels")]
        return lambda v, u, now: _ok("cancel", [v.cancel(u, a, oid=o, cloid=c, now=now) for a, o, c in refs])
    if kind == "batchModify":
        modifies = [_modify_ref(m) for m in _list(action, "modifies")]
        return lambda v, u, now: _ok("batchModify", [_modify(v, u, ref, wire, now) for ref, wire in modifies])
    if kind == "modify":
        ref, wire = _modify_ref(action)
        return lambda v, u, now: _single(_modify(v, u, ref, wire, now))
    if kind == "scheduleCancel":
        at = action.get("time")
        if set(action) - {"type", "time"} or not (at is None or _int(at)):
            raise BadRequest(DESERIALIZE)
        return lambda v, u, now: _answer(v.schedule_cancel(u, at, now))
    if kind == "updateLeverage":
        asset, is_cross, leverage = action.get("asset"), action.get("isCross"), action.get("leverage")
        if not _int(asset) or not isinstance(is_cross, bool) or not _int(leverage):
            raise BadRequest(DESERIALIZE)
        return lambda v, u, now: _update_leverage(v, u, asset, is_cross, leverage)
    return lambda v, u, now: _err(f"Unsupported action type {kind!r} in this simulator.")


def _answer(text: str | None) -> dict:
    return _err(text) if text else _ok("default")


def _single(status: dict) -> dict:
    return _err(status["error"]) if "error" in status else _ok("default")


def _list(action: dict, key: str) -> list[dict]:
    items = action.get(key)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise BadRequest(DESERIALIZE)
    return items


def _place(venue: HlVenue, user: str, wire: dict, now: int) -> dict:
    try:
        order = P.parse_order(wire)
    except P.WireError as exc:
        return P.error_status(str(exc), wire.get("a") if _int(wire.get("a")) else 0)
    return venue.place(user, order, now)


def _cancel_ref(asset, ref, by_cloid: bool) -> tuple[int, int | None, str | None]:
    if not _int(asset):
        raise BadRequest(DESERIALIZE)
    if not by_cloid:
        if not _int(ref):
            raise BadRequest(DESERIALIZE)
        return asset, ref, None
    if not isinstance(ref, str):
        raise BadRequest(DESERIALIZE)
    try:
        return asset, None, P.parse_cloid(ref)
    except P.WireError:
        raise BadRequest(DESERIALIZE) from None


def _modify_ref(modify: dict) -> tuple:
    ref, wire = modify.get("oid"), modify.get("order")
    if not (_int(ref) or isinstance(ref, str)) or not isinstance(wire, dict):
        raise BadRequest(DESERIALIZE)
    if isinstance(ref, str):
        try:
            ref = P.parse_cloid(ref)
        except P.WireError:
            raise BadRequest(DESERIALIZE) from None
    return ref, wire


def _modify(venue: HlVenue, user: str, ref, wire: dict, now: int) -> dict:
    try:
        order = P.parse_order(wire)
    except P.WireError as exc:
        return P.error_status(str(exc), wire.get("a") if _int(wire.get("a")) else 0)
    return venue.modify(user, ref, order, now)


def _update_leverage(venue: HlVenue, user: str, asset: int, is_cross: bool, leverage: int) -> dict:
    """Recorded per user and reported in clearinghouseState; the engine's margin check keeps the
    market's default leverage (min(20, maxLeverage)) for everyone."""
    coin = venue.asset(asset)
    if coin is None:
        return _err("Invalid asset.")
    top = venue.specs[coin].max_leverage
    if not 1 <= leverage <= top:
        return _err(f"Invalid leverage value: {leverage} is not between 1 and {top}.")
    venue.leverage.setdefault(user, {})[coin] = [leverage, is_cross]
    return _ok("default")
