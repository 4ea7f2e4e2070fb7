"""What an operator (or an alarm) asks of the supervisor: emergency stop, halt, resume, flatten,
shutdown and fault injection. A mixin of the Supervisor actor, kept apart so supervisor.py stays about
supervision; every command is journaled with its outcome and answered with the mode it left."""
from __future__ import annotations

from loguru import logger
from thespian.actors import ActorExitRequest

from messages.commands import EmergencyStop, RequestCancels
from messages.lifecycle import AdminShutdown, FaultProbe, Flatten, Halt, InjectFault, Resume, StatusReport
from messages.types import Mode


class OperatorCommands:
    """Needs the Supervisor's mode, reason, roster, journal, _set_mode, _send, _reconcile and send."""

    def on_emergency(self, msg: EmergencyStop, sender) -> None:
        """Stop the grid for good in this run (B-1.2, kill switch, SL/TP): cancel every order, say why
        in status, and close the position if asked. Only an operator brings it back."""
        if self.mode is Mode.STOPPING or self.emergency:
            return
        self.emergency = f"{msg.source}: {msg.reason}" if msg.source else msg.reason
        self.halted, self.stopped_mode = True, Mode.EMERGENCY
        logger.error("EMERGENCY STOP: {}", self.emergency)
        self.journal.log_event("emergency", self.emergency)
        self._set_mode(Mode.EMERGENCY, self.emergency)
        self._send("orderbook", RequestCancels(all_orders=True, reason=f"emergency stop: {msg.reason}"))
        if msg.flatten:
            self._send("risk", Flatten(msg.reason))

    # -- remote admin ----------------------------------------------------------------------------
    def _answer(self, sender, command: str, reason: str, outcome: str, ok: bool = True) -> None:
        """Every admin command and its outcome is journaled, and answered with the mode it left."""
        self.journal.log_event("admin", f"{command} ({reason or 'no reason given'}): {outcome}")
        logger.info("admin {}: {}", command, outcome)
        self.send(sender, StatusReport("supervisor", 0, {"ok": ok, "command": command, "outcome": outcome,
                                                         "mode": self.mode.value, "reason": self.reason}))

    def on_halt(self, msg: Halt, sender) -> None:
        if self.mode is Mode.STOPPING or self.roster is None:
            return self._answer(sender, "halt", msg.reason, f"refused: the bot is {self.mode.value}", False)
        self.halted, self.stopped_mode = True, (Mode.EMERGENCY if self.emergency else Mode.HALTED)
        if self.mode is not Mode.EMERGENCY:
            self._set_mode(Mode.HALTED, f"halted by admin: {msg.reason}".strip(": "))
        self.shutdown_phase = "halting"
        self._send("orderbook", RequestCancels(all_orders=True, reason="halted by admin"))
        self._answer(sender, "halt", msg.reason, "halted: cancelling every order, placing nothing")

    def on_resume(self, msg: Resume, sender) -> None:
        if self.mode not in (Mode.HALTED, Mode.EMERGENCY) or self.roster is None:
            return self._answer(sender, "resume", msg.reason, f"refused: the bot is {self.mode.value}", False)
        self.halted, self.stopped_mode, self.emergency = False, Mode.HALTED, ""
        self.shutdown_phase = ""
        self.reason = f"resumed by admin: {msg.reason}".strip(": ")
        self._reconcile()           # rebuilt from the exchange before anything is placed again
        self._answer(sender, "resume", msg.reason, "reconciling with the exchange, then trading")

    def on_flatten(self, msg: Flatten, sender) -> None:
        if self.mode is Mode.STOPPING or self.roster is None:
            return self._answer(sender, "flatten", msg.reason, f"refused: the bot is {self.mode.value}", False)
        self.halted, self.stopped_mode = True, (Mode.EMERGENCY if self.emergency else Mode.HALTED)
        if self.mode is not Mode.EMERGENCY:
            self._set_mode(Mode.HALTED, f"flattening by admin: {msg.reason}".strip(": "))
        self._send("orderbook", RequestCancels(all_orders=True, reason="flatten by admin"))
        self._send("risk", Flatten(msg.reason or "admin"))
        self._answer(sender, "flatten", msg.reason, "halted; closing the position with reduce-only orders")

    def on_admin_shutdown(self, msg: AdminShutdown, sender) -> None:
        """The launcher owns the shutdown (it writes the summary and reaps every process): it sees this
        flag in its next status poll and stops the bot as Ctrl-C would."""
        self.shutdown_requested = msg.reason or "admin"
        self._answer(sender, "shutdown", msg.reason, "the launcher stops the bot within a second")

    def on_inject(self, msg: InjectFault, sender) -> None:
        member = self.roster.members.get(msg.role) if self.roster else None
        if member is None or member.address is None:
            return self._answer(sender, "inject", msg.kind, f"refused: no live actor {msg.role}", False)
        self.send(member.address, ActorExitRequest() if msg.kind == "exit" else FaultProbe(msg.kind))
        self._answer(sender, "inject", f"{msg.kind} {msg.role}", "delivered")

