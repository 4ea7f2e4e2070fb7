"""gridbot's vocabulary: frozen, slotted dataclasses with Decimal money. Imports nothing of ours."""
from messages.commands import *  # noqa: F401,F403
from messages.events import *  # noqa: F401,F403
from messages.lifecycle import *  # noqa: F401,F403
from messages.reports import *  # noqa: F401,F403
from messages.types import *  # noqa: F401,F403
