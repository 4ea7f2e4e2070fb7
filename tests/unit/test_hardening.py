"""actors.hardening without a running actor system: the allow-list unpickler, the envelope check, the
frame MAC, the key file, the frame reader's cap, the loopback bind and the createActor restriction.

Importing actors.hardening patches Thespian for the whole process, so it is imported inside a fixture
(not at collection) and the process is put back as it was afterwards."""
from __future__ import annotations

import os
import pickle
import stat
import sys
from decimal import Decimal
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def hd(tmp_path_factory):
    was_applied = "actors.hardening" in sys.modules and sys.modules["actors.hardening"]._applied
    from actors import hardening

    previous = hardening.key_file()
    hardening.install(tmp_path_factory.mktemp("hardening-state"))
    yield hardening
    if was_applied:
        hardening.set_key_file(previous)
    else:
        hardening.uninstall()


def global_call(module: str, name: str, *args: str) -> bytes:
    """A protocol-0 pickle that calls module.name(*args) when loaded (GLOBAL, MARK, strings, TUPLE, REDUCE)."""
    body = b"c" + module.encode() + b"\n" + name.encode() + b"\n(" + \
        b"".join(b"V" + a.encode() + b"\n" for a in args) + b"tR."
    return body


def frame(hd, obj) -> bytes:
    return hd.seal(obj)


def loopback_address(port: int = 40000):
    from thespian.actors import ActorAddress
    from thespian.system.transport.IPBase import TCPv4ActorAddress

    return ActorAddress(TCPv4ActorAddress("127.0.0.1", port, external=True))


# --- the unpickler ------------------------------------------------------------------------------

@pytest.mark.parametrize("module,name", [
    ("os", "system"),
    ("posix", "system"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("builtins", "object"),
    ("builtins", "type"),
    ("subprocess", "Popen"),
    ("thespian.runcommand", "Command"),
    ("thespian.runcommand", "RunCommand"),
    ("thespian.shell", "ThespianShell"),
    ("thespian.director", "SourceEncoding"),
    ("thespian.system.logdirector", "LoggerFileDup"),
    ("thespian.system.messages.admin", "RegisterSourceAuthority"),
    ("thespian.actors", "ValidateSource"),
    ("thespian.actors", "ActorSystem"),
    ("thespian.actors", "Actor"),
    ("thespian.system.transport", "ForwardMessage"),
    ("thespian.system.transport.TCPTransport", "TCPTransport"),
    ("thespian.system.messages.convention", "ConventionRegister"),
    ("messages.types", "Side.__class__"),       # dotted name
    ("os", "path.join"),                        # dotted name
    ("actors.hardening", "HardeningProbe"),     # an Actor of ours
    ("actors.hardening", "install"),            # a function of ours
    ("adapters.journal", "Journal"),            # a class of ours with behaviour, not data
    ("messages.events", "Decimal"),             # imported there, defined elsewhere
    ("codecs", "encode"),
    ("copyreg", "_reconstructor"),
])
def test_the_unpickler_refuses_what_is_not_on_the_allow_list(hd, module, name):
    with pytest.raises(hd.Refused):
        hd.safe_unpickle(global_call(module, name))


def test_a_refused_pickle_executes_nothing(hd, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    payload = pickle.dumps((loopback_address(), Exploit()))
    with pytest.raises(hd.Refused):
        hd.open_frame(hd.mac(payload) + payload)          # even with a valid MAC
    with pytest.raises(hd.Refused):
        hd.open_frame(payload)                            # stock Thespian's frame: no MAC
    assert not marker.exists()


def test_our_messages_decimals_enums_and_thespian_addresses_pass(hd):
    from thespian.actors import ActorExitRequest, ChildActorExited, PoisonMessage
    from thespian.system.messages.admin import PendingActor

    from messages.events import FillsRecorded
    from messages.lifecycle import StatusReport
    from messages.reports import FillReport
    from messages.types import FillSource, Mode, Side

    fill = FillReport("t1", "BTC", Side.BUY, Decimal("43210.5"), Decimal("0.001"), Decimal("0.0123"), "USDC",
                      1_700_000_000_000, client_id="c1")
    sender = loopback_address()
    for message in [
        FillsRecorded(7, (fill, fill)),
        StatusReport("supervisor", 3, {"mode": Mode.TRADING, "position": Decimal("-0.5"), "source": FillSource.WS}),
        ChildActorExited(loopback_address(40001)),
        ActorExitRequest(),
        PoisonMessage(fill, "Traceback ..."),
        PendingActor("actors.grid.GridActor", None, 3, {}, globalName="x"),
        {"set": {1, 2}, "frozen": frozenset({3}), "bytes": bytearray(b"ab"), "list": [1.5, None, True]},
    ]:
        out = hd.open_frame(frame(hd, (sender, message)))
        assert out[0] == sender
        assert out[1] == message or type(out[1]) is type(message)


def test_every_message_class_of_ours_is_wire_safe(hd):
    """A class the receiving unpickler refuses is dropped between processes: every dataclass and enum
    in messages.* must pass the allow-list."""
    import dataclasses
    import enum
    import importlib
    import pkgutil

    import messages

    checked = 0
    for info in pkgutil.iter_modules(messages.__path__):
        module = importlib.import_module(f"messages.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, type) and obj.__module__ == module.__name__ and \
                    (dataclasses.is_dataclass(obj) or issubclass(obj, enum.Enum)):
                assert hd.allowed_global(module.__name__, name) is obj
                checked += 1
    assert checked > 20


def test_a_log_record_from_an_actor_passes(hd):
    import logging

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "something %s", None, None)
    record.msg, record.args = record.getMessage(), None
    out = hd.open_frame(frame(hd, (loopback_address(), record)))
    assert out[1].getMessage() == "something %s"


# --- the envelope -------------------------------------------------------------------------------

def test_acks_pass_and_malformed_envelopes_are_refused(hd):
    from thespian.actors import ActorAddress
    from thespian.system.transport.IPBase import TCPv4ActorAddress

    assert hd.open_frame(frame(hd, "ACK")) == "ACK"
    assert hd.open_frame(frame(hd, "ACK+DATAERR")) == "ACK+DATAERR"
    remote = ActorAddress(TCPv4ActorAddress("10.1.2.3", 1900, external=True))
    for bad in ["NACK", ("a", "b"), (loopback_address(),), (loopback_address(), 1, 2), 42, None,
                [loopback_address(), "m"], (remote, "m"), (ActorAddress(None), "m")]:
        with pytest.raises(hd.Refused):
            hd.open_frame(frame(hd, bad))


# --- the MAC ------------------------------------------------------------------------------------

def test_the_mac_accepts_a_good_frame_and_rejects_tampered_ones(hd):
    good = frame(hd, (loopback_address(), "hello"))
    assert hd.open_frame(good)[1] == "hello"
    body = bytearray(good)
    body[-3] ^= 0x01                                     # flip one bit of the pickle
    tag = bytearray(good)
    tag[0] ^= 0x80                                       # flip one bit of the MAC
    for bad in [bytes(body), bytes(tag), good[:-1], good[: hd.MAC_BYTES], b"",
                hd.seal((loopback_address(), "hello"), key=os.urandom(32))]:
        with pytest.raises(hd.Refused):
            hd.open_frame(bad)


def test_without_a_key_nothing_is_sealed_opened_or_listened_on(hd):
    from thespian.system.transport.TCPTransport import TCPTransport

    keep = hd.key_file()
    good = frame(hd, "ACK")
    hd.set_key_file(None)
    try:
        assert not hd.is_installed()
        with pytest.raises(hd.HardeningError, match="no HMAC key|cleared"):
            hd.seal("ACK")
        with pytest.raises(hd.Refused):
            hd.open_frame(good)
        with pytest.raises(hd.HardeningError):
            TCPTransport(object())
    finally:
        hd.set_key_file(keep)
    assert hd.is_installed()


# --- the key file -------------------------------------------------------------------------------

def test_install_creates_a_0600_key_and_reuses_it(hd, tmp_path):
    keep = hd.key_file()
    try:
        state = tmp_path / "state"
        path = hd.install(state)
        assert path == (state / "hmac.key").absolute()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(path.read_bytes()) == 32
        assert os.environ[hd.KEY_FILE_ENV] == str(path)
        first = path.read_bytes()
        assert hd.install(state) == path and path.read_bytes() == first
        assert hd.hardened(state) == path
        assert hd.is_installed()
    finally:
        hd.set_key_file(keep)


def test_a_0644_key_file_is_refused_with_a_clear_error(hd, tmp_path):
    path = tmp_path / "hmac.key"
    path.write_bytes(os.urandom(32))
    path.chmod(0o644)
    with pytest.raises(hd.KeyFileError, match=r"mode 0644.*must be 0600 \(chmod 600"):
        hd.read_key_file(path)
    with pytest.raises(hd.KeyFileError, match="0644"):
        hd.hardened(tmp_path)


def test_missing_short_and_symlinked_key_files_are_refused(hd, tmp_path):
    with pytest.raises(hd.KeyFileError, match="does not exist"):
        hd.hardened(tmp_path / "nowhere")
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 8)
    short.chmod(0o600)
    with pytest.raises(hd.KeyFileError, match="at least 32"):
        hd.read_key_file(short)
    real = tmp_path / "real.key"
    hd.create_key_file(real)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    with pytest.raises(hd.KeyFileError, match="cannot open"):
        hd.read_key_file(link)


# --- the frame reader ---------------------------------------------------------------------------

def test_a_frame_split_across_reads_is_reassembled_with_its_extra_bytes(hd):
    from thespian.system.transport import TCPTransport

    payload = frame(hd, (loopback_address(), "split"))
    wire = b"%d>" % len(payload) + payload + b"12>"
    buf = TCPTransport.ReceiveBuffer(pickle.loads)          # whatever loads it is handed
    assert isinstance(buf, hd.HardenedReceiveBuffer)
    for i in range(0, len(wire), 7):
        buf.addMore(wire[i:i + 7])
        if buf.isDone():
            buf.addMore(wire[i + 7:])
            break
    envelope, extra = buf.completed()
    assert envelope[1] == "split" and extra == b"12>"


@pytest.mark.parametrize("header", [b"%d>" % (64 * 1024 * 1024), b"99999999999999999999>", b"-5>", b" 5>",
                                    b"1_0>", b"0x10>", b"1" * 13, b"\x80\x04\x95"])
def test_a_bad_or_oversized_header_is_refused_before_anything_is_buffered(hd, header):
    from thespian.system.transport import TCPTransport

    buf = TCPTransport.ReceiveBuffer()
    buf.addMore(header + b"x" * 100)
    assert buf.isDone()
    assert buf.completed() is None
    assert buf._buf == b""


def test_the_cap_is_checked_on_the_declared_length(hd):
    from thespian.system.transport import TCPTransport

    ok = TCPTransport.ReceiveBuffer()
    ok.addMore(b"%d>" % hd.MAX_FRAME_BYTES)
    assert not ok.isDone() and ok.remainingAmount() == hd.MAX_FRAME_BYTES
    over = TCPTransport.ReceiveBuffer()
    over.addMore(b"%d>" % (hd.MAX_FRAME_BYTES + 1))
    assert over.isDone() and over.completed() is None


def test_a_message_over_the_cap_fails_at_the_sender(hd, monkeypatch):
    monkeypatch.setattr(hd, "MAX_FRAME_BYTES", 1000)
    with pytest.raises(hd.HardeningError, match="StatusReport of .* exceeds the 1000-byte frame cap"):
        from messages.lifecycle import StatusReport

        hd.seal((loopback_address(), StatusReport("x", 1, {"blob": "x" * 2000})))
    assert hd.open_frame(hd.seal((loopback_address(), "small")))[1] == "small"


def test_a_refused_frame_is_one_warning_line_rate_limited(hd):
    from loguru import logger

    from thespian.system.transport import TCPTransport

    lines = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    hd._warn_state["last"] = 0.0
    try:
        for _ in range(3):
            buf = TCPTransport.ReceiveBuffer()
            bad = pickle.dumps("ACK")
            buf.addMore(b"%d>" % len(bad) + bad)
            assert buf.completed() is None
    finally:
        logger.remove(sink)
    assert len(lines) == 1 and "dropped an incoming frame" in lines[0] and "too short" in lines[0]


def test_the_stock_ack_frames_are_replaced_by_sealed_ones(hd):
    from thespian.system.transport import TCPTransport

    for wire, packet in [(TCPTransport.ackMsg, "ACK"), (TCPTransport.ackDataErrMsg, "ACK+DATAERR")]:
        size, _, payload = wire.partition(b">")
        assert int(size) == len(payload)
        assert hd.open_frame(payload) == packet


# --- bind, apply, createActor -------------------------------------------------------------------

def test_every_address_binds_loopback(hd):
    import socket

    from thespian.system.transport.IPBase import TCPv4ActorAddress, TCPv6ActorAddress

    assert os.environ["THESPIAN_BASE_IPADDR"] == "127.0.0.1"
    assert TCPv4ActorAddress(None, 0, external=True).bindArgs[0][0] == "127.0.0.1"
    assert TCPv4ActorAddress("0.0.0.0", 1900).bindArgs == (("127.0.0.1", 1900),)
    assert TCPv4ActorAddress("", 1900, external=True).bindArgs == (("127.0.0.1", 1900),)
    if socket.has_ipv6:
        try:
            v6 = TCPv6ActorAddress("::", 1900)
        except OSError:
            pytest.skip("no IPv6 here")
        assert v6.bindArgs[0][:2] == ("::1", 1900)


def test_apply_is_idempotent(hd):
    from thespian.system.transport import TCPTransport, streamBuffer

    hd.apply()
    hd.apply()
    assert TCPTransport.serializer is hd.SERIALIZER
    assert TCPTransport.ReceiveBuffer is hd.HardenedReceiveBuffer
    assert streamBuffer.ReceiveBuffer is hd.HardenedReceiveBuffer
    assert hd.HardenedReceiveBuffer.__mro__[1].__init__.__defaults__ == (hd.SERIALIZER.loads,)
    assert hd.is_installed()


def test_a_non_loopback_base_address_is_refused(hd, tmp_path, monkeypatch):
    monkeypatch.setenv("THESPIAN_BASE_IPADDR", "10.0.0.5")
    with pytest.raises(hd.HardeningError, match="not a loopback"):
        hd.install(tmp_path)


@pytest.mark.parametrize("actor_class", [
    "thespian.runcommand.RunCommand",
    "thespian.shell.SimpleSourceAuthority",
    "os.system",
    "tests.unit.test_hardening.Outsider",
    "actors.hardening.install",
    "actors.hardening.NoSuchActor",
    "actors.no_such_module.Actor",
    "HardeningProbe",
    "actors..x",
])
def test_create_actor_is_restricted_to_our_actor_classes(hd, actor_class):
    from thespian.actors import NoCompatibleSystemForActor

    with pytest.raises(NoCompatibleSystemForActor):
        hd.check_actor_class(actor_class, None, warn=False)


def test_create_actor_accepts_ours_and_refuses_loaded_sources_and_foreign_classes(hd):
    from thespian.actors import Actor, NoCompatibleSystemForActor

    assert hd.check_actor_class("actors.hardening.HardeningProbe") is hd.HardeningProbe
    assert hd.check_actor_class(hd.HardeningProbe) is hd.HardeningProbe
    with pytest.raises(NoCompatibleSystemForActor):
        hd.check_actor_class("actors.hardening.HardeningProbe", lambda m, c: hd.HardeningProbe, warn=False)

    class Outsider(Actor):
        pass

    with pytest.raises(NoCompatibleSystemForActor):
        hd.check_actor_class(Outsider, warn=False)
