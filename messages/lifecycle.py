"""Lifecycle and admin messages between the launcher, the supervisor and the actors."""
from __future__ import annotations

from dataclasses import dataclass, field

from messages.reports import VenueState
from messages.types import Mode


@dataclass(frozen=True, slots=True)
class Start:
    """Launcher -> supervisor: the validated config (a config.schema.BotConfig)."""
    config: object


@dataclass(frozen=True, slots=True)
class Ready:
    role: str
    pid: int
    incarnation: int = 0


@dataclass(frozen=True, slots=True)
class Wire:
    """The roster: role -> address, re-sent after every restart (addresses change)."""
    roster: tuple[tuple[str, object], ...]
    config: object
    supervisor: object

    def address(self, role: str):
        for name, addr in self.roster:
            if name == role:
                return addr
        return None


@dataclass(frozen=True, slots=True)
class Rebuild:
    """Rebuild your state from this exchange snapshot (plus your journal tables), then report."""
    state: VenueState
    journal_version: int


@dataclass(frozen=True, slots=True)
class Reconciled:
    role: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ModeChanged:
    mode: Mode
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    role: str
    pid: int
    time: float


@dataclass(frozen=True, slots=True)
class StatusRequest:
    request_id: int


@dataclass(frozen=True, slots=True)
class StatusReport:
    role: str
    request_id: int
    data: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Halt:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Resume:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Flatten:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AdminShutdown:
    """A remote admin asks the bot to stop; the launcher carries it out as it would a Ctrl-C."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Stop trading; cancel our orders unless `cancel_orders` is False; answer ShutdownComplete."""
    cancel_orders: bool = True
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ShutdownComplete:
    summary: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EmergencyStop:
    reason: str
    flatten: bool = False


@dataclass(frozen=True, slots=True)
class InjectFault:
    """Fault injection (tests, chaos): the supervisor makes `role` exit ('exit': ActorExitRequest) or
    raise inside a handler ('raise'). Reaches the bot only through its authenticated admin port."""
    role: str
    kind: str


@dataclass(frozen=True, slots=True)
class FaultProbe:
    """Delivered to an actor to make its handler raise (InjectFault 'raise')."""
    note: str = ""
