"""`python -m sim.hyperliquid [options]` = `gridbot exchange-sim hyperliquid [options]`."""
import sys

from sim.cli import exchange_sim_main

if __name__ == "__main__":
    sys.exit(exchange_sim_main(["hyperliquid", *sys.argv[1:]]))
