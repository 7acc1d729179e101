"""Moved to tests/harness/emulator.py (`python -m harness.emulator PORT [CERT KEY]` with tests/ on
the path); kept here for the command README and BENCHMARKS readers know:
`tests/emulator.py PORT [CERT KEY]` runs it with the same arguments."""

import sys

from harness.emulator import main

if __name__ == "__main__":
    sys.exit(main())
