"""A local Binance spot exchange speaking the real REST + WebSocket protocol, so the unmodified
python-binance client (Client, AsyncClient, BinanceSocketManager) runs against it end to end.

Modules: `protocol` (pure records <-> Binance JSON), `params` (errors, parameters, signatures),
`limits` (request weight, bans, unfilled-order counts), `orders`/`lists` (Binance's order semantics over
the matching engine), `venue` (state and persistence), `market` (market data), `rest` (the /api/v3
endpoints), `ws` (WebSocket API and market streams), `faults` (fault injection), `server` (the aiohttp
app). Run it with `python -m sim.binance --help`.
"""
from sim.binance.venue import BnVenue, VenueSettings

__all__ = ["BnVenue", "VenueSettings"]
