"""The supervisor's pure bookkeeping: who is alive, restart backoff and intensity, status fan-in."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

ROLES = ("gateway", "guarantor", "orderbook", "position", "grid", "risk", "balance")
ACTOR_CLASSES = {
    "gateway": "actors.gateway.GatewayActor",
    "guarantor": "actors.guarantor.FillGuarantorActor",
    "orderbook": "actors.orderbook.OrderBookActor",
    "position": "actors.position.PositionActor",
    "grid": "actors.grid.GridActor",
    "risk": "actors.risk.RiskActor",
    "balance": "actors.balance.BalanceActor",
}
REBUILT = tuple(r for r in ROLES if r != "gateway")


@dataclass
class Member:
    role: str
    address: object = None
    pid: int | None = None
    restarts: int = 0
    last_heartbeat: float | None = None
    alive: bool = False


@dataclass
class Roster:
    backoff_initial: float
    backoff_max: float
    limit: int
    window: float
    members: dict[str, Member] = field(default_factory=lambda: {r: Member(r) for r in ROLES})
    restart_times: deque = field(default_factory=deque)

    def role_of(self, address) -> str | None:
        for m in self.members.values():
            if m.address is not None and m.address == address:
                return m.role
        return None

    def pairs(self) -> tuple:
        return tuple((m.role, m.address) for m in self.members.values() if m.address is not None)

    def exited(self, role: str, now: float | None = None) -> tuple[float, bool]:
        """Record an exit; returns (backoff delay, whether the restart intensity limit is exceeded)."""
        now = time.time() if now is None else now
        m = self.members[role]
        m.alive, m.address, m.pid = False, None, None
        m.restarts += 1
        self.restart_times.append(now)
        while self.restart_times and now - self.restart_times[0] > self.window:
            self.restart_times.popleft()
        delay = min(self.backoff_initial * 2 ** (m.restarts - 1), self.backoff_max)
        return delay, len(self.restart_times) > self.limit

    def hung(self, now: float, timeout: float) -> list[tuple[str, int]]:
        """Live members whose heartbeat stopped: a hung actor produces no exit message of its own."""
        return [(m.role, m.pid) for m in self.members.values()
                if m.alive and m.pid and m.last_heartbeat is not None and now - m.last_heartbeat > timeout]

    def total_restarts(self) -> int:
        return sum(m.restarts for m in self.members.values())

    def view(self) -> dict:
        return {r: {"pid": m.pid, "restarts": m.restarts, "last_heartbeat": m.last_heartbeat, "alive": m.alive}
                for r, m in self.members.items()}


@dataclass
class StatusFanIn:
    """One status request spread over every actor, answered when all replied or the deadline passed."""
    request_id: int
    reply_to: object
    deadline: float
    reports: dict = field(default_factory=dict)
    purpose: str = "status"

    def complete(self, expected) -> bool:
        return all(r in self.reports for r in expected)
