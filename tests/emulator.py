"""The local AWS emulator for the test suite: moto's server, with every request serialised.

moto applies TransactWriteItems without a lock: it snapshots the table, applies the items and,
when a condition fails, restores the snapshot -- erasing any write another request made in
between. Real DynamoDB transactions are serialisable. Serving one request at a time gives the
emulator the isolation DynamoDB guarantees, so concurrency tests test our code, not moto.

Usage: python emulator.py PORT   (binds 127.0.0.1 only)
"""

import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    port = int(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    moto_app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            result = moto_app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        return [body]

    run_simple("127.0.0.1", port, serialised, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
