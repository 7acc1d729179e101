"""The local AWS emulator for the test suite: moto's server, with every request serialised.

moto applies TransactWriteItems without a lock: it snapshots the table, applies the items and,
when a condition fails, restores the snapshot -- erasing any write another request made in
between. Real DynamoDB transactions are serialisable. Serving one request at a time gives the
emulator the isolation DynamoDB guarantees, so concurrency tests test our code, not moto.

Usage: python emulator.py PORT [CERT KEY]   (binds 127.0.0.1 only)

With CERT (a chain file) and KEY it serves HTTPS and keeps connections open between requests
(HTTP/1.1), as the AWS endpoints do: for the cold-request bench, which must pay a handshake
only where a function would.
"""

import signal
import socket
import sys
import threading
import time

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def kms_digest_signing() -> None:
    """A shim: moto 5.2's KMS `Sign` ignores `MessageType` and always hashes the message, where
    AWS's Sign reference says "When the value is DIGEST, KMS skips the hashing step in the
    signing algorithm" and "the length of the Message value must match the length of hashed
    messages for the specified signing algorithm". The issuer signs digests (RS256 tokens of any
    length fit KMS's 4,096-byte Message), so this signs a DIGEST as AWS does, with the key moto
    made, and refuses a digest of the wrong length as AWS does."""
    import base64
    import json

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from moto.kms.exceptions import ValidationException
    from moto.kms.responses import KmsResponse

    if getattr(KmsResponse.sign, "digest_shim", False):
        return
    original = KmsResponse.sign

    def sign(self):
        if self._get_param("MessageType") != "DIGEST":
            return original(self)
        key = self.kms_backend.describe_key(self._get_param("KeyId"))
        algorithm, digest = self._get_param("SigningAlgorithm"), self._get_param("Message")
        if key.key_usage != "SIGN_VERIFY" or algorithm not in (key.signing_algorithms or []):
            raise ValidationException(f"SigningAlgorithm {algorithm} is not one of {key.signing_algorithms}")
        h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[algorithm[-3:]]
        if len(digest) != h.digest_size:
            raise ValidationException(f"Digest is invalid length for algorithm {algorithm}.")
        private = key.private_key.private_key
        if algorithm.startswith("RSASSA_PKCS1_V1_5"):
            signature = private.sign(digest, padding.PKCS1v15(), Prehashed(h))
        elif algorithm.startswith("RSASSA_PSS"):
            pss = padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.DIGEST_LENGTH)
            signature = private.sign(digest, pss, Prehashed(h))
        else:
            signature = private.sign(digest, ec.ECDSA(Prehashed(h)))
        return json.dumps({"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(),
                           "SigningAlgorithm": algorithm})

    sign.digest_shim = True
    KmsResponse.sign = sign


def serialised_app(busy=None):
    """moto's WSGI app, one request at a time. `busy`, when given, is called with the seconds
    each request held the emulator (for `tests/stack.py`'s account of the emulator's latency)."""
    kms_digest_signing()
    moto_app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            started = time.perf_counter()
            result = moto_app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            if busy is not None:
                busy(time.perf_counter() - started)
        return [body]

    return serialised


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
