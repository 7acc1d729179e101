"""shopping-local for the scripts that test it from outside (contract.py, generated_client.py):
started on a fresh data directory and a free loopback port, loopback webhooks allowed, its log
in the data directory, killed when the block ends."""

import contextlib
import os
import subprocess
import tempfile


@contextlib.contextmanager
def serving(binary: str, prefix: str):
    """Yields (the server process, its base URL, its data directory)."""
    data = tempfile.mkdtemp(prefix=prefix)
    server = subprocess.Popen(
        [binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", data, "--webhook-allow-loopback"],
        stdout=subprocess.PIPE,
        stderr=open(os.path.join(data, "server.log"), "w"),
        text=True,
    )
    try:
        line = server.stdout.readline()
        base = line.strip().rsplit(" ", 1)[-1]
        if not base.startswith("http://127.0.0.1:"):
            raise SystemExit(f"shopping-local did not start: {line!r}")
        yield server, base, data
    finally:
        server.kill()
        server.wait()
