"""`python -m sim.binance [options]` = `gridbot exchange-sim binance [options]`."""
import sys

from sim.cli import exchange_sim_main

if __name__ == "__main__":
    sys.exit(exchange_sim_main(["binance", *sys.argv[1:]]))
