"""The local AWS emulator for the test suite: moto's server, with every request serialised.

moto applies TransactWriteItems without a lock: it snapshots the table, applies the items and,
when a condition fails, restores the snapshot -- erasing any write another request made in
between. Real DynamoDB transactions are serialisable. Serving one request at a time gives the
emulator the isolation DynamoDB guarantees, so concurrency tests test our code, not moto.

Usage: python -m harness.emulator PORT [CERT KEY]   (binds 127.0.0.1 only; tests/ on the path,
as `tests/emulator.py PORT [CERT KEY]` puts it)

With CERT (a chain file) and KEY it serves HTTPS and keeps connections open between requests
(HTTP/1.1), as the AWS endpoints do: for the cold-request bench, which must pay a handshake
only where a function would.

The harness serves the same app in its own process (`serve`), for `tests/stack up`.
"""

import io
import signal
import socket
import sys
import threading
import time
from http import HTTPStatus

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server, run_simple

from .kms_shim import kms_digest_signing


class Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves a host: moto works it out on every
    request by listing its package's folders on disk and trying each service's URL patterns in
    turn (~0.9 ms a call, under the lock). The answer depends only on the host (moto's tables do
    not change while it runs), so the same backend serves the same request as before."""

    def __init__(self, create_app):
        super().__init__(create_app)
        self.backend_of_host = {}

    def get_backend_for_host(self, host):
        try:
            return self.backend_of_host[host]
        except KeyError:
            backend = self.backend_of_host[host] = super().get_backend_for_host(host)
            return backend


def serialised_app(busy=None, gate=None, before=None):
    """moto's WSGI app, one request at a time. `busy`, when given, is called with the seconds
    each request held the emulator (for the harness's account of the emulator's latency).
    `gate`, when given, sees each request first, as `gate(environ, body)`, and answers None
    (moto serves it) or `(status, headers, body)`: the answer AWS would give instead (a refusal
    by IAM, an injected fault), and moto never sees the request. `before`, when given, is such a
    gate too, seen before `gate` and outside the lock: for a check of the request against policies
    (IAM's: on AWS another service, whose policy changes are eventually consistent), so that
    requests do not queue behind it."""
    kms_digest_signing()
    moto_app = Dispatcher(create_backend_app)
    lock = threading.Lock()

    def refuse(answer, start_response):
        status, headers, out = answer
        start_response(f"{status} {HTTPStatus(status).phrase}", list(headers) + [("Content-Length", str(len(out)))])
        return [out]

    def serialised(environ, start_response):
        body = None
        if gate is not None or before is not None:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
        if before is not None:
            answer = before(environ, body)
            if answer is not None:
                return refuse(answer, start_response)
        with lock:
            started = time.perf_counter()
            if gate is not None:
                answer = gate(environ, body)
                if answer is not None:
                    return refuse(answer, start_response)
            result = moto_app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            if busy is not None:
                busy(time.perf_counter() - started)
        return [body]

    # Whoever reads moto's models in this process (the TTL sweeper) holds it too.
    serialised.lock = lock
    return serialised


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def serve(busy, gate=None, before=None):
    """The serialised app on a free loopback port, served from this process's threads (the
    harness's emulator); `busy`, `gate` and `before` as `serialised_app` takes them. Answers the server
    (its `emulator_lock` the lock every request is served under) and its URL."""

    class NoDelay(MotoRequestHandler):
        def setup(self):
            super().setup()
            # As QuietServer's (runtime.py): each answer at once, not after a delayed acknowledgement.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    port = free_port()
    app = serialised_app(busy, gate, before)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=NoDelay)
    server.emulator_lock = app.lock
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}"


def main() -> None:
    port = int(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serialised = serialised_app()

    if len(sys.argv) == 4:
        class KeepAlive(MotoRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # Each answer goes out at once, as AWS endpoints send it: without this, Nagle's
                # algorithm holds a response's second write until the client acknowledges the
                # first, which adds ~10 ms to every request on a kept-alive connection.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        run_simple("127.0.0.1", port, serialised, threaded=True, request_handler=KeepAlive,
                   ssl_context=(sys.argv[2], sys.argv[3]))
    else:
        run_simple("127.0.0.1", port, serialised, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
