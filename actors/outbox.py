"""What a pure state class returns: messages addressed by role, and timers. No Thespian here, so state
classes stay plain Python and are unit-tested directly."""
from __future__ import annotations

from dataclasses import dataclass

REPLY = "@reply"          # the sender of the message being handled
SUPERVISOR = "supervisor"


class MalformedInput(ValueError):
    """Input that cannot be applied; raised before any state changed, so the actor keeps running."""


@dataclass(frozen=True, slots=True)
class Out:
    to: str | tuple[str, ...]
    msg: object


@dataclass(frozen=True, slots=True)
class After:
    """Deliver `payload` back to the same actor's `on_timer` after `seconds`."""
    seconds: float
    payload: object


def to(roles, msg) -> Out:
    return Out(roles if isinstance(roles, (str, tuple)) else tuple(roles), msg)
