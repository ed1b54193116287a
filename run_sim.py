#!/usr/bin/env python
"""Command-line entry point: ``python run_sim.py {run,validate,list,profile,profiles,sweep,report}``."""

import sys

from simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
