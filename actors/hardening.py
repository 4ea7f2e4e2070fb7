"""Hardening of Thespian 4.0.1's multiprocTCPBase transport (see ../shared/docs/thespian.md, "Security").

Stock Thespian binds every port on all interfaces and unpickles whatever arrives on them, so anything
that can reach a port can run code in the bot. Importing this module patches Thespian in the current
process (idempotently); every actor process is forked from it and inherits the patches, so import it
(and call `install`) before the first `ActorSystem()`:

1. Bind loopback: every Thespian socket binds 127.0.0.1 (::1 for IPv6), and
   THESPIAN_BASE_IPADDR defaults to 127.0.0.1 so the advertised address matches the bound one.
2. Authenticate: every frame carries an HMAC-SHA256 of its pickle under a 32-byte key kept in
   `<state_dir>/hmac.key` (mode 0600, owned by us; a looser file is refused). A frame without a valid
   MAC is dropped before it is unpickled. A process without the key can neither send nor receive;
   without any key, no TCP transport can even be created (fail closed: `HardeningError`).
3. Allow-list unpickler: only data classes (dataclasses, enums, exceptions) defined in our packages,
   a short list of Thespian's own protocol classes (addresses, admin/lifecycle messages; never
   runcommand, shell, director, LoggerFileDup, RegisterSourceAuthority, source loading, conventions,
   forwarding) and a few standard types (Decimal, datetime, collections, LogRecord, socket enums).
   Never a function, never a dotted name, never an Actor. Then the envelope must be 'ACK',
   'ACK+DATAERR' or (ActorAddress on loopback, message). A refused frame is dropped with one warning
   (loguru, rate-limited); it never executes anything and never kills the receiving process.
4. Frame size cap: a declared length above MAX_FRAME_BYTES (16 MiB, env GRIDBOT_MAX_FRAME_BYTES), or
   a header that is not 1-12 digits then '>', closes the connection before anything is buffered.
5. createActor is restricted to Actor classes defined in the `actors` package (and the top-level
   `supervisor` module, which holds the Supervisor the launcher creates), checked where the
   multiproc bases resolve the class (admin and parent), before anything is imported; loaded
   sources (source hashes) are refused.

API:
    install(state_dir) -> Path   launcher: create/load <state_dir>/hmac.key, export its path in
                                 GRIDBOT_HMAC_KEY_FILE; call before ActorSystem().
    hardened(state_dir) -> Path  admin client: load the existing key (never creates one).
    set_key_file(path)           load a specific key file (exports GRIDBOT_HMAC_KEY_FILE too).
    is_installed() -> bool       patches applied and a key loaded.
    uninstall()                  tests only: restore stock Thespian in this process.

Measured cost (2 cores, Python 3.11, shared and loaded machine): CPU per frame, sealing 10.2 us
(pickle 7.6 + HMAC 1.9) and opening 10.5 us (HMAC 1.9 + allow-list unpickle 5.8 + envelope 0.5)
against stock pickle 7.6 / 6.6 us: ~21 us of CPU per external ask (2 frames sealed, 4 opened, the ACKs
pre-sealed). End to end, 4 x 4000 asks of StatusRequest to an echo actor, interleaved runs: stock p50
0.48-0.73 ms, hardened p50 0.58-0.81 ms, i.e. +60..100 us per ask at p50 (p99 within noise).
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import importlib
import io
import ipaddress
import os
import pickle
import secrets
import socket
import stat
import sys
import threading
import time
from pathlib import Path

from loguru import logger
from thespian.actors import Actor, ActorAddress, NoCompatibleSystemForActor
from thespian.system import actorManager as _actor_manager
from thespian.system import multiprocCommon as _multiproc
from thespian.system import utilis as _utilis
from thespian.system.admin import convention as _convention
from thespian.system.transport import IPBase as _ipbase
from thespian.system.transport import TCPTransport as _tcp
from thespian.system.transport import streamBuffer as _stream

KEY_FILE_ENV = "GRIDBOT_HMAC_KEY_FILE"
MAX_FRAME_ENV = "GRIDBOT_MAX_FRAME_BYTES"
KEY_FILE_NAME = "hmac.key"
KEY_BYTES = 32
MAC_BYTES = 32
PICKLE_PROTOCOL = 5  # sets, frozensets and bytearrays by opcode: no builtins to allow
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
_MAX_HEADER_DIGITS = 12

ACTOR_MODULES = ("actors", "supervisor")            # createActor: Actor classes defined here only
DATA_PACKAGES = ("actors", "messages", "adapters", "config", "sim")
_IMPORTABLE_PACKAGES = ("messages", "config")       # may be imported on demand by the unpickler


class HardeningError(RuntimeError):
    """The hardening cannot be applied or used as asked (no key, bad key file, bad address)."""


class KeyFileError(HardeningError):
    """The HMAC key file is missing, unreadable, too open, not ours, or too short."""


class Refused(Exception):
    """A received frame was refused (bad MAC, forbidden global, bad envelope, bad header)."""


def _max_frame_bytes() -> int:
    raw = os.environ.get(MAX_FRAME_ENV, "")
    try:
        value = int(raw) if raw else DEFAULT_MAX_FRAME_BYTES
    except ValueError:
        value = DEFAULT_MAX_FRAME_BYTES
    return value if value > 0 else DEFAULT_MAX_FRAME_BYTES


MAX_FRAME_BYTES = _max_frame_bytes()


# ---------------------------------------------------------------------------------------------
# The key
# ---------------------------------------------------------------------------------------------
_key: bytes | None = None
_key_file: Path | None = None
_key_problem = "no HMAC key: call actors.hardening.install(state_dir) (launcher) or hardened(state_dir) " \
               "(admin client) before ActorSystem()"
_lock = threading.RLock()


def create_key_file(path: str | os.PathLike) -> bool:
    """Create `path` with KEY_BYTES random bytes and mode 0600 unless it exists; True if created."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, 0o600)  # whatever the umask said
        data = secrets.token_bytes(KEY_BYTES)
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def read_key_file(path: str | os.PathLike) -> bytes:
    """The key in `path`, refusing a file that is not a regular file of ours with mode 0600 (or 0400)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise KeyFileError(f"HMAC key file {path} does not exist (the launcher creates it with "
                           f"actors.hardening.install(state_dir))") from None
    except OSError as exc:
        raise KeyFileError(f"cannot open HMAC key file {path}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"HMAC key file {path} is not a regular file")
        if st.st_uid != os.geteuid():
            raise KeyFileError(f"HMAC key file {path} belongs to uid {st.st_uid}, not to us (uid {os.geteuid()})")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise KeyFileError(f"HMAC key file {path} has mode {mode:04o}: group/others may read it; "
                               f"it must be 0600 (chmod 600 {path})")
        chunks = []
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
            if sum(map(len, chunks)) > 4096:
                raise KeyFileError(f"HMAC key file {path} is larger than 4096 bytes")
    finally:
        os.close(fd)
    key = b"".join(chunks)
    if len(key) < KEY_BYTES:
        raise KeyFileError(f"HMAC key file {path} holds {len(key)} bytes; at least {KEY_BYTES} are needed")
    return key


def set_key_file(path: str | os.PathLike | None) -> Path | None:
    """Use the key in `path` in this process and in every process started from it (exported in
    GRIDBOT_HMAC_KEY_FILE, which this module reads when it is imported). None forgets the key: no
    frame can then be sent or received, and no TCP transport created."""
    global _key, _key_file, _key_problem
    if path is None:
        with _lock:
            _key, _key_file = None, None
            _key_problem = "the HMAC key was cleared (set_key_file(None))"
            os.environ.pop(KEY_FILE_ENV, None)
        return None
    path = Path(path).absolute()
    key = read_key_file(path)
    with _lock:
        _key, _key_file, _key_problem = key, path, ""
        os.environ[KEY_FILE_ENV] = str(path)
        _refresh_acks()
    return path


def mac(body: bytes, key: bytes | None = None) -> bytes:
    """HMAC-SHA256 of one frame's pickle."""
    return hmac.digest(key if key is not None else _require_key(), body, hashlib.sha256)


def _require_key() -> bytes:
    key = _key
    if key is None:
        raise HardeningError(_key_problem)
    return key


# ---------------------------------------------------------------------------------------------
# The allow-list
# ---------------------------------------------------------------------------------------------
def _stdlib_allowed() -> dict:
    import collections
    import datetime
    import decimal
    import fractions
    import logging
    import pathlib
    import uuid

    allowed = {
        ("decimal", "Decimal"): decimal.Decimal,
        ("fractions", "Fraction"): fractions.Fraction,
        ("datetime", "datetime"): datetime.datetime,
        ("datetime", "date"): datetime.date,
        ("datetime", "time"): datetime.time,
        ("datetime", "timedelta"): datetime.timedelta,
        ("datetime", "timezone"): datetime.timezone,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("collections", "deque"): collections.deque,
        ("collections", "defaultdict"): collections.defaultdict,
        ("collections", "Counter"): collections.Counter,
        ("logging", "LogRecord"): logging.LogRecord,
        ("socket", "AddressFamily"): socket.AddressFamily,
        ("socket", "SocketKind"): socket.SocketKind,
        ("pathlib", "PurePosixPath"): pathlib.PurePosixPath,
        ("pathlib", "PosixPath"): pathlib.PosixPath,
        ("uuid", "UUID"): uuid.UUID,
        ("builtins", "complex"): complex,
        ("builtins", "slice"): slice,
    }
    # Exceptions (e.g. inside a PoisonMessage or an ExchangeError); not SystemExit & co.
    import builtins
    for name, obj in vars(builtins).items():
        if isinstance(obj, type) and issubclass(obj, Exception):
            allowed[("builtins", name)] = obj
    return allowed


# Thespian's own protocol: what a running multiprocTCPBase system sends (logged from real runs of
# the bot and its tests), plus the rest of the admin/lifecycle/status vocabulary. Not: ActorSystem,
# any Actor, transports, log handlers, LoggerFileDup, LogAggregator, source loading
# (ValidateSource, ValidatedSource, LoadedSource, UnloadedSource, RegisterSourceAuthority,
# NotifyOnSourceAvailability, SourceHashTransfer*), conventions, troupes, ForwardMessage (relaying).
THESPIAN_ALLOWED = {
    "thespian.actors": {"ActorAddress", "ActorSystemMessage", "ActorExitRequest", "ChildActorExited",
                        "PoisonMessage", "WakeupMessage", "WatchMessage", "DeadEnvelope"},
    "thespian.system.transport.IPBase": {"IPActorAddress", "TCPv4ActorAddress", "TCPv6ActorAddress",
                                         "RoutedTCPv4ActorAddress", "TXOnlyAdminTCPv4ActorAddress"},
    "thespian.system.messages.admin": {"QueryExists", "QueryAck", "SystemShutdown",
                                       "SystemShutdownCompleted", "PendingActor", "PendingActorResponse",
                                       "HandleDeadLetters", "CapabilityUpdate", "NewCapabilities"},
    "thespian.system.messages.multiproc": {"EndpointConnected", "LoggerConnected", "ChildMayHaveDied"},
    "thespian.system.messages.status": {"Thespian_StatusReq", "Thespian_SystemStatus",
                                        "Thespian_ActorStatus"},
    "thespian.system.messages.logcontrol": {"SetLogging"},
    "thespian.system.logdirector": {"LoggerExitRequest"},
    "thespian.system.timing": {"ExpirationTimer"},
}
DENIED_MODULES = ("thespian.runcommand", "thespian.shell", "thespian.director", "thespian.troupe",
                  "thespian.system.sourceLoader", "thespian.system.messages.convention",
                  "thespian.system.admin")
DENIED_NAMES = {"LoggerFileDup", "LogAggregator", "RegisterSourceAuthority", "NotifyOnSourceAvailability",
                "ValidateSource", "ValidatedSource", "LoadedSource", "UnloadedSource",
                "SourceHashTransferRequest", "SourceHashTransferReply", "ActorSystem", "ForwardMessage",
                "ActorSystemConventionUpdate", "ThespianLogForwarder", "ThespianLogForwardHandler"}

_STDLIB = _stdlib_allowed()
_resolved: dict[tuple[str, str], type] = {}


def _under(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _is_data_class(obj) -> bool:
    return (dataclasses.is_dataclass(obj) or issubclass(obj, enum.Enum) or issubclass(obj, Exception))


def allowed_global(module: str, name: str):
    """The class pickle may use for `module.name`, or Refused. Pure policy, cached."""
    key = (module, name)
    obj = _resolved.get(key)
    if obj is not None:
        return obj
    if not isinstance(module, str) or not isinstance(name, str):
        raise Refused("non-string global")
    what = f"{module}.{name}"
    if "." in name or not name.isidentifier() or name.startswith("__"):
        raise Refused(f"dotted or private name {what}")
    if not all(part.isidentifier() for part in module.split(".")):
        raise Refused(f"bad module name {what}")
    if _under(module, DENIED_MODULES) or name in DENIED_NAMES:
        raise Refused(f"denied global {what}")
    if key in _STDLIB:
        obj = _STDLIB[key]
    elif module in THESPIAN_ALLOWED:
        if name not in THESPIAN_ALLOWED[module]:
            raise Refused(f"Thespian class {what} is not on the allow-list")
        obj = getattr(importlib.import_module(module), name, None)
        if not isinstance(obj, type) or obj.__module__ != module:
            raise Refused(f"{what} is not a class defined there")
    elif _under(module, DATA_PACKAGES):
        mod = sys.modules.get(module)
        if mod is None and _under(module, _IMPORTABLE_PACKAGES):
            try:
                mod = importlib.import_module(module)
            except ImportError:
                mod = None
        if mod is None:
            raise Refused(f"module of {what} is not loaded here")
        obj = getattr(mod, name, None)
        if not isinstance(obj, type) or obj.__module__ != module:
            raise Refused(f"{what} is not a class defined there")
        if issubclass(obj, Actor):
            raise Refused(f"{what} is an Actor")
        if not _is_data_class(obj):
            raise Refused(f"{what} is not a data class (dataclass, enum or exception)")
    else:
        raise Refused(f"global {what} is not on the allow-list")
    _resolved[key] = obj
    return obj


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return allowed_global(module, name)

    def persistent_load(self, pid):
        raise Refused("persistent ids are not allowed")


def safe_unpickle(body: bytes):
    """Unpickle with the allow-list (no MAC, no envelope check)."""
    try:
        return SafeUnpickler(io.BytesIO(body)).load()
    except Refused:
        raise
    except Exception as exc:
        raise Refused(f"unpickling failed: {type(exc).__name__}: {exc}") from None


_loopback_hosts: dict = {}


def _is_loopback(host) -> bool:
    known = _loopback_hosts.get(host) if isinstance(host, str) else None
    if known is not None:
        return known
    if host == "localhost":
        result = True
    else:
        try:
            result = ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            result = False
    if isinstance(host, str) and len(_loopback_hosts) < 64:
        _loopback_hosts[host] = result
    return result


def check_envelope(obj):
    """'ACK', 'ACK+DATAERR' or (ActorAddress on loopback, message); anything else is Refused."""
    if type(obj) is str:
        if obj in (_stream.ackPacket, _stream.ackDataErrPacket):
            return obj
        raise Refused("a bare string that is not an ACK")
    if type(obj) is not tuple or len(obj) != 2:
        raise Refused(f"envelope is a {type(obj).__name__}, not (sender, message)")
    sender = obj[0]
    if type(sender) is not ActorAddress:
        raise Refused(f"sender is a {type(sender).__name__}, not an ActorAddress")
    details = getattr(sender, "addressDetails", None)
    if not isinstance(details, _ipbase.IPActorAddress):
        raise Refused("sender address is not an IP address")
    try:
        host = details.sockname[0]
    except (AttributeError, TypeError, IndexError):
        raise Refused("sender address has no socket name") from None
    if not _is_loopback(host):
        raise Refused(f"sender address {host!r} is not loopback")
    return obj


def open_frame(data: bytes, key: bytes | None = None):
    """A frame's payload (MAC + pickle) -> the checked envelope, or Refused."""
    key = key if key is not None else _key
    if key is None:
        raise Refused("no HMAC key installed")
    if not isinstance(data, (bytes, bytearray)) or len(data) <= MAC_BYTES:
        raise Refused("frame too short for a MAC")
    if type(data) is not bytes:
        data = bytes(data)
    tag, body = data[:MAC_BYTES], data[MAC_BYTES:]
    if not hmac.compare_digest(tag, hmac.digest(key, body, hashlib.sha256)):
        raise Refused("bad MAC")
    return check_envelope(safe_unpickle(body))


def seal(obj, key: bytes | None = None) -> bytes:
    """obj -> a frame's payload (MAC + pickle)."""
    body = pickle.dumps(obj, protocol=PICKLE_PROTOCOL)
    if len(body) + MAC_BYTES > MAX_FRAME_BYTES:
        # Fail at the sender (Thespian turns it into a PoisonMessage) rather than be dropped at the receiver.
        raise HardeningError(f"a {type(obj[1] if type(obj) is tuple and len(obj) == 2 else obj).__name__} "
                             f"of {len(body)} bytes exceeds the {MAX_FRAME_BYTES}-byte frame cap")
    return mac(body, key) + body


class _Serializer:
    """Stands in for the `pickle` module as TCPTransport's `serializer`."""

    @staticmethod
    def dumps(obj) -> bytes:
        return seal(obj)

    @staticmethod
    def loads(data):
        return open_frame(data)


SERIALIZER = _Serializer()

_warn_state = {"last": 0.0, "suppressed": 0}


REFUSAL_HOOKS: list = []      # f(text): e.g. the launcher journals refused frames (called rate-limited)


def _warn_refused(reason: str) -> None:
    """One warning line per refused frame, at most one a second per process (the rest are counted)."""
    now = time.monotonic()
    with _lock:
        if now - _warn_state["last"] < 1.0:
            _warn_state["suppressed"] += 1
            return
        suppressed, _warn_state["suppressed"], _warn_state["last"] = _warn_state["suppressed"], 0, now
    more = f" ({suppressed} more refused since the previous warning)" if suppressed else ""
    try:
        logger.warning("thespian hardening: dropped an incoming frame in pid {}: {}{}", os.getpid(), reason, more)
    except Exception:
        pass
    for hook in REFUSAL_HOOKS:
        try:
            hook(f"refused a frame in pid {os.getpid()}: {reason}{more}")
        except Exception:
            pass


class HardenedReceiveBuffer(_stream.ReceiveBuffer):
    """Thespian's frame reader ('<digits>>' then that many bytes), with the header checked and the
    declared length capped before anything is buffered, and the hardened loads whatever it is given."""

    def __init__(self, serializer=None):
        super().__init__(SERIALIZER.loads)
        self._refused = None

    def _refuse(self, reason: str) -> None:
        self._refused = reason
        self._buf = b""
        self._extra = b""
        _warn_refused(reason)

    def addMore(self, buf):
        if self._refused is not None:
            return
        if isinstance(buf, str):
            buf = buf.encode("latin-1")
        if self._size is not None:
            # As Thespian's, but it forgot to count the bytes of a read that also carries extra data.
            want = self._size - self._blen
            if want <= 0:
                self._extra += buf
            else:
                self._buf += buf[:want]
                self._blen = len(self._buf)
                if len(buf) > want:
                    self._extra += buf[want:]
            return
        data = self._buf + bytes(buf)
        mark = data.find(b">")
        if mark < 0:
            if len(data) > _MAX_HEADER_DIGITS:
                return self._refuse("frame header without '>'")
            self._buf = data
            self._blen = 1
            return
        head = data[:mark]
        if not (0 < len(head) <= _MAX_HEADER_DIGITS and head.isdigit()):
            return self._refuse(f"bad frame header {head[:16]!r}")
        size = int(head)
        if size > MAX_FRAME_BYTES:
            return self._refuse(f"declared frame of {size} bytes exceeds the {MAX_FRAME_BYTES}-byte cap")
        rem = data[mark + 1:]
        self._size = size
        self._buf = rem[:size]
        self._blen = len(self._buf)
        if len(rem) > size:
            self._extra = rem[size:]

    def isDone(self):
        return self._refused is not None or super().isDone()

    def remainingAmount(self):
        return 1 if self._refused is not None else super().remainingAmount()

    def completed(self):
        """(envelope, extra), or None when the frame is incomplete or refused (Thespian then answers
        ACK+DATAERR and closes the connection, or retries a send whose ACK was bad)."""
        if self._refused is not None:
            return None
        if self._size is None or self._blen != self._size:
            return None
        try:
            return open_frame(self._buf), self._extra
        except Refused as exc:
            self._refuse(str(exc))
        except Exception as exc:  # never let a frame take the process down
            self._refuse(f"{type(exc).__name__} while opening a frame")
        return None


def _refresh_acks() -> None:
    """Thespian pre-pickles its two ACK frames at import; re-make them with the MAC."""
    if _key is None or not _applied:
        return
    ack = _stream.toSendBuffer(_stream.ackPacket, SERIALIZER.dumps)
    nak = _stream.toSendBuffer(_stream.ackDataErrPacket, SERIALIZER.dumps)
    _tcp.ackMsg = ack
    _tcp.ackDataErrMsg = nak


# ---------------------------------------------------------------------------------------------
# createActor
# ---------------------------------------------------------------------------------------------
def check_actor_class(actor_class, source_hash_loader=None, warn: bool = True):
    """The Actor class to create, or NoCompatibleSystemForActor when it is not one of ours."""
    if source_hash_loader is not None:
        raise NoCompatibleSystemForActor(actor_class, "gridbot hardening: loaded sources are disabled")
    if isinstance(actor_class, str):
        module, _, name = actor_class.rpartition(".")
        if not _under(module, ACTOR_MODULES) or not name.isidentifier() \
                or not all(p.isidentifier() for p in module.split(".")):
            if warn:
                _warn_create(actor_class)
            raise NoCompatibleSystemForActor(actor_class, f"gridbot hardening: {actor_class} is outside "
                                                          f"the allowed actor modules {ACTOR_MODULES}")
    try:
        cls = _originals["actualActorClass"](actor_class, None)
    except Exception as exc:  # stock Thespian lets an unknown class kill the admin
        raise NoCompatibleSystemForActor(actor_class, f"gridbot hardening: cannot resolve {actor_class!r}: "
                                                      f"{type(exc).__name__}: {exc}") from None
    module = getattr(cls, "__module__", "") or ""
    if not (isinstance(cls, type) and issubclass(cls, Actor) and _under(module, ACTOR_MODULES)):
        if warn:
            _warn_create(actor_class)
        raise NoCompatibleSystemForActor(actor_class, f"gridbot hardening: {actor_class!r} is not an Actor "
                                                      f"defined in {ACTOR_MODULES}")
    return cls


def _warn_create(actor_class) -> None:
    try:
        logger.warning("thespian hardening: refused to create actor {!r} in pid {}", actor_class, os.getpid())
    except Exception:
        pass


def _guarded_check_capabilities(actorClass, capabilities=None, requirements=None, sourceHashLoader=None):
    cls = check_actor_class(actorClass, sourceHashLoader)
    return _originals["checkActorCapabilities"](cls, capabilities, requirements, None)


def _guarded_actual_actor_class(actorClass, sourceHashLoader=None):
    return check_actor_class(actorClass, sourceHashLoader)


def _quiet_actual_actor_class(actorClass, sourceHashLoader=None):
    # The admin's second look (conventions) at a request already refused and logged once.
    return check_actor_class(actorClass, sourceHashLoader, warn=False)


# ---------------------------------------------------------------------------------------------
# Bind and transport creation
# ---------------------------------------------------------------------------------------------
def _loopback_bind_args(self):
    name = self.bindname
    host = "::1" if self.af == socket.AF_INET6 else "127.0.0.1"
    return ((host,) + tuple(name[1:]),)


def _guarded_transport_init(self, *args, **kw):
    _require_key()
    return _originals["TCPTransport.__init__"](self, *args, **kw)


# ---------------------------------------------------------------------------------------------
# Apply / undo
# ---------------------------------------------------------------------------------------------
_applied = False
_originals: dict = {}
_env_set: dict = {}


def apply() -> None:
    """Patch Thespian in this process (idempotent). Done when this module is imported."""
    global _applied
    with _lock:
        if _applied:
            return
        if "THESPIAN_BASE_IPADDR" not in os.environ:
            os.environ["THESPIAN_BASE_IPADDR"] = "127.0.0.1"
            _env_set["THESPIAN_BASE_IPADDR"] = True
        o = _originals
        o["bindArgs"] = _ipbase.IPActorAddress.__dict__["bindArgs"]
        o["serializer"] = _tcp.serializer
        o["TCPTransport.ReceiveBuffer"] = _tcp.ReceiveBuffer
        o["streamBuffer.ReceiveBuffer"] = _stream.ReceiveBuffer
        o["ReceiveBuffer.defaults"] = _stream.ReceiveBuffer.__init__.__defaults__
        o["ackMsg"], o["ackDataErrMsg"] = _tcp.ackMsg, _tcp.ackDataErrMsg
        o["TCPTransport.__init__"] = _tcp.TCPTransport.__dict__["__init__"]
        o["checkActorCapabilities"] = _utilis.checkActorCapabilities
        o["multiproc.checkActorCapabilities"] = _multiproc.checkActorCapabilities
        o["actualActorClass"] = _utilis.actualActorClass
        o["actorManager.actualActorClass"] = _actor_manager.actualActorClass
        o["convention.actualActorClass"] = _convention.actualActorClass

        _ipbase.IPActorAddress.bindArgs = property(_loopback_bind_args)
        _tcp.serializer = SERIALIZER
        _tcp.ReceiveBuffer = HardenedReceiveBuffer
        _stream.ReceiveBuffer = HardenedReceiveBuffer
        o["streamBuffer.ReceiveBuffer"].__init__.__defaults__ = (SERIALIZER.loads,)
        _tcp.TCPTransport.__init__ = _guarded_transport_init
        _multiproc.checkActorCapabilities = _guarded_check_capabilities
        _actor_manager.actualActorClass = _guarded_actual_actor_class
        _convention.actualActorClass = _quiet_actual_actor_class
        _applied = True
        # Until a key is loaded the ACK frames cannot be sealed; no transport can be made either.
        _refresh_acks()


def uninstall() -> None:
    """Restore stock Thespian and forget the key in this process (for tests)."""
    global _applied, _key, _key_file, _key_problem
    with _lock:
        if not _applied:
            return
        o = _originals
        _ipbase.IPActorAddress.bindArgs = o["bindArgs"]
        _tcp.serializer = o["serializer"]
        _tcp.ReceiveBuffer = o["TCPTransport.ReceiveBuffer"]
        _stream.ReceiveBuffer = o["streamBuffer.ReceiveBuffer"]
        o["streamBuffer.ReceiveBuffer"].__init__.__defaults__ = o["ReceiveBuffer.defaults"]
        _tcp.ackMsg, _tcp.ackDataErrMsg = o["ackMsg"], o["ackDataErrMsg"]
        _tcp.TCPTransport.__init__ = o["TCPTransport.__init__"]
        _multiproc.checkActorCapabilities = o["multiproc.checkActorCapabilities"]
        _actor_manager.actualActorClass = o["actorManager.actualActorClass"]
        _convention.actualActorClass = o["convention.actualActorClass"]
        for name in list(_env_set):
            os.environ.pop(name, None)
            del _env_set[name]
        os.environ.pop(KEY_FILE_ENV, None)
        _key, _key_file = None, None
        _key_problem = "hardening was uninstalled"
        _applied = False


def _check_base_ipaddr() -> None:
    base = os.environ.get("THESPIAN_BASE_IPADDR", "")
    if base and not _is_loopback(base):
        raise HardeningError(f"THESPIAN_BASE_IPADDR={base} is not a loopback address, but the hardened "
                             f"transport binds 127.0.0.1 only: unset it or set it to 127.0.0.1")


def install(state_dir: str | os.PathLike, *, create: bool = True) -> Path:
    """Launcher side: apply the patches and load `<state_dir>/hmac.key`, creating it (32 random bytes,
    mode 0600) if absent. Call before ActorSystem(); forked actor processes inherit everything."""
    apply()
    _check_base_ipaddr()
    state = Path(state_dir)
    if create:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        create_key_file(state / KEY_FILE_NAME)
    return set_key_file(state / KEY_FILE_NAME)


def hardened(state_dir: str | os.PathLike) -> Path:
    """Admin-client side: apply the patches and load the running bot's existing key (never creates
    one: a fresh key could not talk to the bot anyway). Call before ActorSystem()."""
    return install(state_dir, create=False)


def is_installed() -> bool:
    return _applied and _key is not None


def key_file() -> Path | None:
    return _key_file


# ---------------------------------------------------------------------------------------------
# A probe actor: answers StatusRequest with its pid (used by the security tests and as a
# self-check that the hardened transport works end to end).
# ---------------------------------------------------------------------------------------------
class HardeningProbe(Actor):
    def receiveMessage(self, msg, sender):
        from messages.lifecycle import StatusReport, StatusRequest

        if isinstance(msg, StatusRequest):
            self.send(sender, StatusReport("hardening-probe", msg.request_id, {"pid": os.getpid()}))


apply()
if os.environ.get(KEY_FILE_ENV):
    try:
        set_key_file(os.environ[KEY_FILE_ENV])
    except HardeningError as exc:
        _key_problem = f"{exc} (from {KEY_FILE_ENV})"
        logger.error("thespian hardening: {}", _key_problem)
