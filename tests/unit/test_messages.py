"""Every message class is a frozen, slotted dataclass and survives pickle (multiprocTCPBase pickles
everything that crosses a process)."""
from __future__ import annotations

import dataclasses
import enum
import pickle
import types
import typing
from decimal import Decimal

import pytest

import messages
from messages import commands, events, lifecycle, reports
from messages import types as value_types

pytestmark = pytest.mark.timeout(30)

MODULES = (commands, events, lifecycle, reports, value_types)
CLASSES = sorted({obj for m in MODULES for obj in vars(m).values()
                  if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == m.__name__},
                 key=lambda c: c.__name__)


def sample(tp, depth=0):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in typing.get_args(tp) if a is not type(None)), depth)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return (sample(args[0], depth + 1),) if depth < 3 else ()
        return tuple(sample(a, depth + 1) for a in args)
    if tp is tuple:
        return ()
    if origin is dict or tp is dict:
        return {"key": Decimal("1.5")}
    if tp is typing.Any or tp is object:
        return "opaque"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return list(tp)[0]
    if tp is Decimal:
        return Decimal("1.25")
    if tp is bool:
        return True
    if tp is int:
        return 3
    if tp is float:
        return 0.5
    if tp is str:
        return "0xabc"
    if dataclasses.is_dataclass(tp):
        return build(tp, depth + 1)
    raise AssertionError(f"no sample for {tp!r}")


def build(cls, depth=0):
    hints = typing.get_type_hints(cls, vars(messages))
    return cls(**{f.name: sample(hints[f.name], depth) for f in dataclasses.fields(cls) if f.init})


def test_all_message_modules_are_covered():
    names = {c.__name__ for c in CLASSES}
    assert {"FillReport", "OrderSpec", "PlaceOrders", "FillsRecorded", "Wire", "Rebuild", "MarketRules",
            "OrdersPlaced", "ExchangeSnapshot", "ShutdownComplete"} <= names
    assert len(CLASSES) >= 45


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_message_round_trips_through_pickle(cls):
    message = build(cls)
    copy = pickle.loads(pickle.dumps(message))
    assert copy == message
    assert type(copy) is cls


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_message_is_frozen_and_slotted(cls):
    message = build(cls)
    assert hasattr(cls, "__slots__")
    field = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(message, field, getattr(message, field))


def test_money_fields_are_decimal():
    fill = build(reports.FillReport)
    assert isinstance(fill.price, Decimal) and isinstance(fill.size, Decimal) and isinstance(fill.fee, Decimal)
