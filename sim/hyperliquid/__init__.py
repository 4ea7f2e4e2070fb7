"""A local Hyperliquid exchange speaking the real HTTP + WebSocket protocol, so the unmodified
hyperliquid-python-sdk (Info, Exchange, its WebsocketManager) runs against it end to end.

Modules: `protocol` (pure engine <-> Hyperliquid JSON), `venue` (state and persistence), `exchange`
(signed actions), `info` (queries), `ws` (the WebSocket hub), `faults` (fault injection and its SPEC
grammar), `server` (the aiohttp app). Run it with `python -m sim.hyperliquid --help`.
"""
from sim.hyperliquid.venue import HlVenue, VenueSettings

__all__ = ["HlVenue", "VenueSettings"]
