"""API Gateway: the HTTP API's deployed routes and integrations (payload format 2.0), its JWT
authorizers (authorizer.py), its own answers and limits (payload, request line and headers, the
integration timeout); and the function URLs, each on a port of its own. What each behaviour
follows of AWS's documentation: FIDELITY.md in this folder, "Edge and runtime".

`HttpApi` is a part of the Harness (harness/stack.py): it reads the deployed stack through the
Harness's `body`, `resolver`, `functions`, `physical_ids`, `attribute`, `world` and `api_id`,
sets its `routes`, `authorizers` and `function_urls`, and adds to its `url_hosts` and `servers`.
"""

import base64
import http.server
import json
import queue
import re
import threading
import time
import urllib.parse
import urllib.request
import uuid

from .account import API_PAYLOAD_MAX, INTEGRATION_TIMEOUT, REGION, log
from .authorizer import Authorizer, claim_text
from .payload import gateway_answer, internal_error, v2_event, v2_response
from .runtime import InvocationError, QuietServer

# "Total combined size of request line and header values | 10240 bytes" (http-api-quotas.html).
# What API Gateway answers past it is not documented: 431, in API Gateway's shape.
HEADERS_MAX = 10240
# How `rawPath` (and `requestContext.http.path`) reach the function: AWS documents that "API
# Gateway decodes URL-encoded request parameters before passing them to your backend
# integration" (http-api-develop-routes.html), not what it does to rawPath. `tests/stack up`
# takes SHOPPING_STACK_RAW_PATH=decoded (the default, the harsher for a product building its
# request URI from rawPath: an id holding `/`, `%`, `?` or `#` comes back changed) or as-sent.
RAW_PATH_MODES = ("decoded", "as-sent")


class Invokers:
    """The threads that run the API's invocations, kept between them: a new thread for every
    request cost its start (waiting for the new thread to get the interpreter, behind every busy
    thread of the harness) on the request's path. An invocation never waits for a thread: with
    none idle, one more starts; one idle for a minute ends."""

    IDLE_FOR = 60.0

    def __init__(self):
        self.lock, self.idle, self.work = threading.Lock(), 0, queue.SimpleQueue()

    def run(self, task):
        with self.lock:
            spare = self.idle > 0
            if spare:
                self.idle -= 1
        self.work.put(task)
        if not spare:
            threading.Thread(target=self.serve, daemon=True, name="invoker").start()

    def serve(self):
        while True:
            try:
                task = self.work.get(timeout=self.IDLE_FOR)
            except queue.Empty:
                with self.lock:
                    if self.idle == 0:
                        continue  # every waiting thread has a task on its way
                    self.idle -= 1
                return
            task()
            with self.lock:
                self.idle += 1


INVOKERS = Invokers()


class Route:
    def __init__(self, method, path, function, secured, scopes):
        self.method, self.path, self.function, self.secured, self.scopes = method, path, function, secured, scopes
        parts = path.strip("/").split("/")
        self.params = [p[1:-1] if p.startswith("{") else None for p in parts]
        self.literals = [p for p in parts]
        self.key = f"{method} {path}"

    def match(self, method, path):
        """The path parameters (percent-decoded) when `path` (as sent: an encoded `/` stays
        within its segment) is this route's, else None."""
        if method != self.method:
            return None
        parts = path.strip("/").split("/") if path != "/" else [""]
        if len(parts) != len(self.params):
            return None
        got = {}
        for name, lit, seg in zip(self.params, self.literals, parts):
            if name is None:
                if lit != seg:
                    return None
            elif not seg:
                return None
            else:
                got[name] = urllib.parse.unquote(seg)
        return got

    def specificity(self):
        # API Gateway prefers the most specific route: more literal segments first.
        return sum(1 for p in self.params if p is None)


def serve_http(port, handle):
    """A threaded HTTP/1.1 server whose every request goes to `handle(method, path, query,
    headers, body, ip)` → (status, headers, body[, cookies])."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __getattr__(self, name):
            # Every method reaches the gateway's routes (TRACE, PROPFIND, made-up ones): the
            # stdlib's answer to one it has no do_ for is an HTML 501.
            if name.startswith("do_"):
                return self.any
            raise AttributeError(name)

        def send_error(self, code, message=None, explain=None):
            # The stdlib's own refusals (a malformed request line, too many headers) in API
            # Gateway's shape, not as an HTML page.
            self.close_connection = True
            if not str(getattr(self, "request_version", "")).startswith("HTTP/1"):
                self.request_version = "HTTP/1.1"  # not the stdlib's bare HTTP/0.9 body
            try:
                self.reply(*gateway_answer(code, message or self.responses.get(code, ("Error",))[0]), close=True)
            except (AttributeError, OSError):
                pass

        def any(self):
            size = len(self.requestline) + sum(len(v) for v in self.headers.values())
            if size > HEADERS_MAX:
                return self.reply(*gateway_answer(431, "Request Header Fields Too Large"), close=True)
            split = urllib.parse.urlsplit(self.path)
            length = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
                    if len(body) > API_PAYLOAD_MAX:
                        return self.reply(*gateway_answer(413, "Request Entity Too Large"), close=True)
            elif length and int(length) > API_PAYLOAD_MAX:
                # Read (and drop) what the client sends, so that it reads the answer.
                left = int(length)
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    left -= len(chunk)
                return self.reply(*gateway_answer(413, "Request Entity Too Large"), close=True)
            else:
                body = self.rfile.read(int(length or 0))
            answer = handle(self.command, split.path, split.query, list(self.headers.items()), body, self.client_address[0])
            self.reply(*answer)

        def reply(self, status, headers, body, cookies=(), close=False):
            self.send_response(status)
            for k, v in headers.items():
                if k not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                    self.send_header(k, v)
            for c in cookies:
                self.send_header("set-cookie", c)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if getattr(self, "command", None) != "HEAD":
                self.wfile.write(body)

        def send_response(self, code, message=None):
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

        def log_message(self, *_):
            pass

    server = QuietServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class HttpApi:
    """The Harness's HTTP API and function URLs."""

    def by_reference(self, text):
        """The function a transformed reference names (`${DraftsFunctionAliaslive}`, a Ref)."""
        m = re.search(r"\$\{(\w+?Function)(Alias\w+)?(\.Arn)?\}", text)
        return m.group(1) if m else None

    # ---- the HTTP API

    def load_api(self):
        """The deployed routes and authorizers. An authorizer whose issuer and audiences are
        unchanged is kept, its key cache with it; a changed one is a new authorizer."""
        api = next(r for r in self.body["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api")
        doc = api["Properties"]["Body"]
        schemes = doc.get("components", {}).get("securitySchemes", {})
        authorizers, routes = {}, []
        for name, scheme in schemes.items():
            auth = self.resolver.resolve(scheme["x-amazon-apigateway-authorizer"])
            if auth.get("type") != "jwt":
                raise SystemExit(f"authorizer {name}: only JWT authorizers are emulated")
            jwt_config = auth["jwtConfiguration"]
            audience = jwt_config.get("audience") or []
            audience = [audience] if isinstance(audience, str) else audience
            kept = self.authorizers.get(name)
            if kept is not None and (kept.issuer, kept.audiences) == (jwt_config["issuer"], audience):
                authorizers[name] = kept
            else:
                authorizers[name] = Authorizer(jwt_config["issuer"], audience, self.fetch, self.world)
        for path, methods in doc["paths"].items():
            for method, op in methods.items():
                integration = op["x-amazon-apigateway-integration"]
                uri = integration["uri"]
                uri = uri.get("Fn::Sub") if isinstance(uri, dict) else uri
                fn = self.by_reference(uri if isinstance(uri, str) else uri[0])
                if fn not in self.functions or integration.get("payloadFormatVersion") != "2.0":
                    raise SystemExit(f"route {method.upper()} {path}: integration {integration} is not emulated")
                security = op.get("security") or [{name: [] for name in list(schemes)[:1]}]
                (scheme, scopes), = security[0].items()
                secured = scheme in authorizers
                routes.append(Route(method.upper(), path, fn, scheme if secured else None, scopes))
        routes.sort(key=Route.specificity, reverse=True)
        self.authorizers, self.routes = authorizers, routes

    def api(self, method, path, query, headers, body, ip):
        """One request through the HTTP API: its route, its authorizer, its integration. Every
        answer carries `apigw-requestid`, as API Gateway's do, and the harness's log names it."""
        rid = base64.b32encode(uuid.uuid4().bytes).decode()[:14] + "="
        status, hdrs, *rest = self.route_request(rid, method, path, query, headers, body, ip)
        return (status, dict(hdrs, **{"apigw-requestid": rid}), *rest)

    def route_request(self, rid, method, path, query, headers, body, ip):
        # "API Gateway selects the route with the most-specific match" (http-api-develop-routes.html):
        # the routes are sorted so (literal segments first).
        route, params = None, None
        for r in self.routes:
            params = r.match(method, path)
            if params is not None:
                route = r
                break
        if route is None:
            log(f"api {rid} {method} {path} 404 (no route)")
            return gateway_answer(404, "Not Found")
        authorizer = None
        if route.secured:
            header = next((v for k, v in headers if k.lower() == "authorization"), None)
            claims = self.authorizers[route.secured].claims(header, route.scopes)
            if isinstance(claims, tuple):
                log(f"api {rid} {route.key} {claims[0]} (authorizer: {claims[3]['why']})")
                return claims[:3]
            scope = str(claims.get("scope", claims.get("scp", ""))).split()
            authorizer = {"jwt": {"claims": {k: claim_text(v) for k, v in claims.items()},
                                  "scopes": route.scopes and scope or None}}
        raw_path = urllib.parse.unquote(path) if getattr(self, "raw_path_mode", "decoded") == "decoded" else path
        event = v2_event(method, raw_path, query, headers, body, ip, rid, f"{self.api_id}.execute-api.{REGION}.amazonaws.com",
                         route.key, params, authorizer, self.api_id)
        return self.integrate(self.functions[route.function], event, f"{route.key} apigw {rid}")

    def integrate(self, fn, event, what):
        """The Lambda integration: the function's answer as HTTP, or API Gateway's when there is
        none. "If the Lambda API rejects the invocation request, API Gateway returns a 500 error
        code. If the function runs but returns an error, or returns a response in the wrong
        format, API Gateway returns a 502." (services-apigateway-errors.html). "API Gateway does
        not retry any Lambda invocations." Past the 30 s integration timeout it answers 503
        (not documented; as commonly observed), the function running on to its own timeout."""
        given_up = time.time() + INTEGRATION_TIMEOUT
        box, done = {}, threading.Event()

        def run():
            try:
                box["out"] = fn.invoke(json.dumps(event).encode(), what, give_up_at=given_up)
            except InvocationError as e:
                box["error"] = e
            except Exception as e:  # noqa: BLE001 - the harness failing is said so, not hidden
                box["error"] = InvocationError("harness", f"{type(e).__name__}: {e}")
                log(f"api {what}: the harness failed: {type(e).__name__}: {e}")
            finally:
                done.set()

        INVOKERS.run(run)
        if not done.wait(INTEGRATION_TIMEOUT):
            log(f"api {what}: 503 (integration timeout: no answer within {INTEGRATION_TIMEOUT:.0f} s)")
            return gateway_answer(503, "Service Unavailable")
        e = box.get("error")
        if e is None:
            answer = v2_response(box["out"])
            if len(answer) == 3:
                log(f"api {what}: 502 (the function's response is not format 2.0)")
            return answer
        if e.kind == "queued":
            log(f"api {what}: 503 (integration timeout: queued for the laptop's {fn.concurrency} processes)")
            return gateway_answer(503, "Service Unavailable")
        status = 500 if e.kind in InvocationError.REJECTED else 502
        log(f"api {what}: {status} ({e.kind})")
        return internal_error(status)

    # ---- function URLs

    def serve_function_urls(self):
        self.function_urls = {}
        for logical, r in self.body["Resources"].items():
            if r["Type"] != "AWS::Lambda::Url" or logical not in self.physical_ids:
                continue
            target = r["Properties"]["TargetFunctionArn"]["Ref"]
            url = self.attribute(logical, "FunctionUrl")
            host = urllib.parse.urlsplit(url).hostname
            fn = self.functions[target]

            def handle(method, path, query, headers, body, ip, fn=fn, host=host):
                rid = str(uuid.uuid4())
                # Reached at its local address, answered as at its own: `Host` is the URL's domain.
                headers = [(k, host if k.lower() == "host" else v) for k, v in headers]
                event = v2_event(method, path, query, headers, body, ip, rid, host, api_id=host.split(".")[0])
                return self.integrate(fn, event, f"URL {method} {path}")

            server = serve_http(0, handle)
            self.servers.append(server)
            local = f"http://127.0.0.1:{server.server_address[1]}/"
            self.url_hosts[host] = local
            self.function_urls[target] = {"url": url, "local": local}

    def fetch(self, url):
        """An https fetch from the public internet, as API Gateway makes it: a function URL of
        the stack is answered by its local server."""
        split = urllib.parse.urlsplit(url)
        local = self.url_hosts.get(split.hostname)
        if local is None:
            raise ValueError(f"{url} is not reachable from this machine")
        with urllib.request.urlopen(local.rstrip("/") + split.path, timeout=10) as res:
            return res.read()
