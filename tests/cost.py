"""Moved to tests/bench/cost.py; kept for the command README's readers know (`python3 tests/cost.py`).
Runs it with the same arguments."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
os.execv(sys.executable, [sys.executable, os.path.join(HERE, "bench", "cost.py"), *sys.argv[1:]])
