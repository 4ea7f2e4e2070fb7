"""The fault SPEC grammar the local exchanges share: a comma-separated list of `name` or
`name=value` items. Each simulator names its one-shots, counters and flags, plus any item with a value
of its own (`ws_silence=SECONDS`, `clock_skew_ms=N`); a bad item raises ValueError naming it."""
from __future__ import annotations

import re
from typing import Callable

_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}
_SIGNED = re.compile(r"^[+-]?[0-9]+$")


def seconds(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"fault {name!r} needs seconds, got {value!r}") from None
    if not number >= 0:
        raise ValueError(f"fault {name!r} needs seconds >= 0, got {value!r}")
    return number


def signed_ms(name: str, value: str) -> int:
    if not _SIGNED.match(value):
        raise ValueError(f"fault {name!r} needs a whole number of ms, got {value!r}")
    return int(value)


def parse_spec(spec: str, one_shots: tuple, counters: tuple, flags: tuple,
               valued: dict[str, Callable[[str, str], object]]) -> list[tuple[str, object]]:
    """The spec as (name, value) items, validated; one-shots (and `clear`) have value True."""
    items: list[tuple[str, object]] = []
    for raw in (spec or "").split(","):
        item = raw.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if name in one_shots or name == "clear":
            if value:
                raise ValueError(f"fault {name!r} takes no value")
            items.append((name, True))
        elif name in counters:
            if not value.isdigit():
                raise ValueError(f"fault {name!r} needs a whole number, got {value!r}")
            items.append((name, int(value)))
        elif name in valued:
            items.append((name, valued[name](name, value)))
        elif name in flags:
            text = value.lower() or "1"
            if text not in _TRUE | _FALSE:
                raise ValueError(f"fault {name!r} needs 0 or 1, got {value!r}")
            items.append((name, text in _TRUE))
        else:
            raise ValueError(f"unknown fault {name!r} (known: {', '.join(one_shots + counters + flags)}, "
                             f"{', '.join(valued)}, clear)")
    return items
