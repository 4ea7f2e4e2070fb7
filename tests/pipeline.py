"""The bot's state classes on the paper exchange's simulated clock, in one process: moved to product
code as `sim.backtest.pipeline` (what `gridbot backtest` runs); re-exported here for the tests."""
from sim.backtest.pipeline import BacktestVenue, Pipeline

__all__ = ["Pipeline", "BacktestVenue"]
