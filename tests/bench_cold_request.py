"""Moved to tests/bench/cold_request.py; kept for the command BENCHMARKS.md's readers know.
Runs it with the same arguments."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
os.execv(sys.executable, [sys.executable, os.path.join(HERE, "bench", "cold_request.py"), *sys.argv[1:]])
