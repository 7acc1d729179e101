"""Rotating the stack's signing key, on the stack as AWS runs it, with its JWT authorizer held to
API Gateway's harshest documented reading (tests/harness/authorizer.py: RSA only, the issuer's
keys cached KEY_CACHE_SECONDS, no fetch for a kid the cache lacks).

Usage: rotation_test.py --stack DIR   (a running `tests/stack up --data-dir DIR` at the template's
default key slots; it redeploys the stack's key slots and moves its clock about six hours on, so
it runs last)

1. A rotation that never refuses a live token: the next key published beside the signing one
   (`redeploy SigningKeySlot=A StandbyKeySlot=B`), the longest key cache waited out; the next key
   signs, the previous one still published (`B`, `A`), the longest token lifetime waited out; the
   previous key withdrawn (`B`, `none`). Every token issued on the way is used right after it is
   issued and at every later step while it has not expired: each one is 200.
2. The negative control (the harness is as strict as AWS, so 1 means something): a new key
   published and made to sign at once, with no wait: its token is 401 while the authorizer's
   cache is fresh, 200 once the cache has expired.
3. The key-compromise drill: the signing key withdrawn at once, the other slot signing with a new
   key (`redeploy` with no standby): a token of the withdrawn key still verifies while the cache is
   fresh (for at most its own hour), the new key's tokens are 401 until the cache expires (at most
   two hours); then the new key's tokens are 200 and the withdrawn key's are refused.
4. Algorithm confusion: an HS256 token whose HMAC key is the published RSA public key (PEM),
   an ES256 token of some P-256 key and an unsigned (`none`) one, each with the current kid and
   claims: 401.
5. The authorizer's claim checks (iss, aud, exp, nbf, iat) on tokens the key itself signed, and
   a token narrowed to `read:shopping` refused a write; a redeploy the template's rules refuse
   changes nothing.
6. No key material in the table or its stream: no `AUTH#KEYS` item, no value holding a PEM
   (`BEGIN`) or `CLIENT_HASH`, in any item or in any stream record of any shard.

Prints `ok: …` per check; exits non-zero on the first failure with what it saw.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.request

import hosts
from client_facing import as_json, call

# The stack harness, tests/harness, is a package beside this folder.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness.authorizer import KEY_CACHE_SECONDS  # noqa: E402

AID = "T12345678"
TOKEN_LIFETIME = 3600
# A token whose `exp` is nearer than this is not used any more: it could expire mid-check.
EXPIRY_MARGIN = 120


def fail(msg: str) -> None:
    raise SystemExit(f"rotation: {msg}")


def ok(msg: str) -> None:
    print(f"ok: {msg}", flush=True)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Token:
    """A token as the client holds it: its header and claims, read unverified."""

    def __init__(self, label, raw):
        import jwt

        self.label, self.raw = label, raw
        self.head = jwt.get_unverified_header(raw)
        self.claims = jwt.decode(raw, options={"verify_signature": False})
        self.kid, self.exp = self.head.get("kid"), self.claims["exp"]

    def __str__(self):
        return f"{self.label} (kid {self.kid})"


class Stack:
    """The running stack as this test drives it: its emulated clock, redeploys, one API client's
    tokens, and the tokens expected to verify while they live."""

    def __init__(self, data_dir):
        self.host = hosts.StackHost(data_dir)
        self.state = self.host.state
        self.orders = f"{self.host.base}/v1/accounts/{AID}/shopping/orders"
        with urllib.request.urlopen(self.state["control"] + "/clock", timeout=10) as res:
            self.offset = json.loads(res.read())["offset_seconds"]
        self.client = self.host.credentials(AID, "admin:shopping")
        self.live: list[Token] = []
        self.seen: set = set()

    def now(self) -> float:
        return time.time() + self.offset

    def advance_to(self, when: float, why: str) -> None:
        self.offset += int(when - self.now()) + 1
        self.host.move_clock(self.offset)
        ok(f"clock moved to {self.offset} s ({why})")

    def redeploy(self, **params) -> None:
        args = [f"{k}={v}" for k, v in params.items()]
        run = subprocess.run([hosts.STACK, "redeploy", "--data-dir", self.host.data, "--parameter-overrides", *args],
                             capture_output=True, text=True, check=False)
        if run.returncode != 0 or run.stdout.strip() != "redeployed: " + " ".join(args):
            fail(f"tests/stack redeploy {' '.join(args)}: {run.returncode} {run.stdout!r} {run.stderr!r}")
        with open(os.path.join(self.host.data, "stack.json")) as f:
            self.state = json.load(f)
        ok(run.stdout.strip())

    def key(self, slot: str) -> str:
        return self.state["resources"][f"SigningKey{slot}"]

    def jwks(self) -> list:
        with urllib.request.urlopen(self.state["function_urls"]["keys"]["local"] + ".well-known/jwks.json") as res:
            return json.loads(res.read())["keys"]

    def published(self, *slots) -> None:
        keys = self.jwks()
        kids = sorted(k.get("kid") for k in keys)
        if kids != sorted(self.key(s) for s in slots):
            fail(f"the JWKS publishes {kids}, not slots {slots}: {[self.key(s) for s in slots]}")
        ok(f"the JWKS publishes {len(keys)} key{'s' if len(keys) > 1 else ''}: slot{'s' if len(slots) > 1 else ''} "
           f"{', '.join(slots)}")

    def issue(self, label: str, slot: str) -> Token:
        """A token from the token endpoint, signed by `slot`'s key."""
        cid, secret = self.client
        basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
        req = urllib.request.Request(f"{self.host.base}/v1/accounts/{AID}/auth/token", method="POST",
                                     data=b'{"grant_type":"client_credentials"}',
                                     headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"})
        with urllib.request.urlopen(req, timeout=30) as res:
            token = Token(label, json.loads(res.read())["access_token"])
        if token.head.get("alg") != "RS256" or token.kid != self.key(slot):
            fail(f"{label}: header {token.head}, expected RS256 by slot {slot} ({self.key(slot)})")
        if token.exp - token.claims["iat"] > TOKEN_LIFETIME:
            fail(f"{label} lives {token.exp - token.claims['iat']} s, more than {TOKEN_LIFETIME}")
        self.seen.add(token.kid)
        return token

    def new_key(self, slot: str) -> None:
        if self.key(slot) in self.seen:
            fail(f"slot {slot}'s key {self.key(slot)} has signed before: not a new key")

    def expect(self, token: Token, status: int, why: str) -> None:
        got, raw = call("GET", self.orders, token.raw)
        if got != status or (status == 401 and as_json(raw) != {"message": "Unauthorized"}):
            fail(f"{token}: {got} {raw[:300]!r}, expected {status}: {why}")

    def keep(self, token: Token) -> None:
        """A token expected to verify from now on while it lives: used now, and at each step."""
        self.expect(token, 200, "a token of a published key, issued now")
        self.live.append(token)
        ok(f"{token}: 200")

    def step(self, what: str) -> None:
        """Every kept token that has not expired is still 200."""
        self.live = [t for t in self.live if t.exp > self.now() + EXPIRY_MARGIN]
        for token in self.live:
            self.expect(token, 200, f"a live token, {what}")
        ok(f"{what}: every live token is 200 ({', '.join(t.label for t in self.live) or 'none live'})")


def rotation(s: Stack) -> float:
    """1. Answers when the authorizer's keys were last fetched (by the first call after the
    longest key cache was waited out)."""
    given = s.state["parameters"]
    if (given.get("SigningKeySlot"), given.get("StandbyKeySlot")) != ("A", "none"):
        fail(f"start from the default key slots, not {given.get('SigningKeySlot')}/{given.get('StandbyKeySlot')}")
    for k in s.jwks():
        if k.get("kty") != "RSA" or k.get("alg") != "RS256" or not k.get("n") or not k.get("e"):
            fail(f"a JWKS entry is not an RS256 RSA key: {k}")
    s.published("A")
    s.keep(s.issue("t0", "A"))

    s.redeploy(SigningKeySlot="A", StandbyKeySlot="B")
    s.published("A", "B")
    s.step("B published beside A")
    s.keep(s.issue("t1", "A"))
    s.advance_to(s.now() + KEY_CACHE_SECONDS + 60, "the longest key cache waited out")
    fetched = s.now()
    s.step("the longest key cache later")
    s.keep(s.issue("t1b", "A"))

    s.redeploy(SigningKeySlot="B", StandbyKeySlot="A")
    s.step("B signs, A still published")
    s.keep(s.issue("t2", "B"))
    s.advance_to(s.now() + TOKEN_LIFETIME + 600, "the longest token lifetime and a deploy waited out")
    s.step("the longest token lifetime later")
    s.keep(s.issue("t2b", "B"))

    s.redeploy(SigningKeySlot="B", StandbyKeySlot="none")
    s.published("B")
    s.step("A withdrawn")
    s.keep(s.issue("t3", "B"))
    ok("rotation: no live token was refused at any step")
    return fetched


def negative_control(s: Stack, fetched: float) -> float:
    """2. Answers when the authorizer's keys were fetched again."""
    s.redeploy(SigningKeySlot="B", StandbyKeySlot="A")
    s.published("B", "A")
    s.new_key("A")
    s.redeploy(SigningKeySlot="A", StandbyKeySlot="B")
    early = s.issue("early", "A")
    s.expect(early, 401, "a key made to sign as soon as it is published is not in the authorizer's cache")
    ok(f"{early}: 401, its key published just now and the authorizer's cache fresh for "
       f"{KEY_CACHE_SECONDS - int(s.now() - fetched)} s more")
    s.step("A signs with no wait")
    s.advance_to(fetched + KEY_CACHE_SECONDS - 120, "the cache's last two minutes")
    s.expect(early, 401, "the authorizer's cache, still fresh, does not know the key")
    ok(f"{early}: still 401 two minutes before the cache expires")
    s.step("the cache still fresh")
    s.advance_to(fetched + KEY_CACHE_SECONDS + 60, "the cache expired")
    refetched = s.now()
    s.keep(early)
    s.step("the cache fetched again")
    ok("negative control: a key signing before the authorizer's cache could know it is refused until the cache expires")
    return refetched


def compromise(s: Stack, fetched: float) -> None:
    """3. From A signing alone, A is compromised: B signs with a new key, A is withdrawn at once."""
    s.advance_to(fetched + TOKEN_LIFETIME + 600, "every token of B expired, the cache still fresh")
    s.step("before the drill")
    s.redeploy(SigningKeySlot="A", StandbyKeySlot="none")
    s.published("A")
    stolen = s.issue("stolen", "A")
    s.expect(stolen, 200, "a token of the signing key")
    s.redeploy(SigningKeySlot="B", StandbyKeySlot="none")
    s.published("B")
    s.new_key("B")
    s.expect(stolen, 200, "a withdrawn key's token verifies while the authorizer's cache is fresh")
    ok(f"{stolen}: still 200 after its key was withdrawn (the cache is fresh; the token expires in "
       f"{int(stolen.exp - s.now())} s)")
    fresh = s.issue("fresh", "B")
    s.expect(fresh, 401, "the new key is not in the authorizer's cache")
    ok(f"{fresh}: 401 while the cache is fresh")
    s.advance_to(fetched + KEY_CACHE_SECONDS + 60, "the cache expired")
    if stolen.exp <= s.now() + EXPIRY_MARGIN:
        fail(f"{stolen} expires before the check ({stolen.exp} ≤ {s.now() + EXPIRY_MARGIN:.0f})")
    s.expect(stolen, 401, "the withdrawn key, once the cache is fetched again")
    ok(f"{stolen}: 401 once the cache is fetched again, {int(stolen.exp - s.now())} s before its exp")
    s.keep(fresh)
    s.keep(s.issue("after", "B"))
    ok("compromise: the withdrawn key's tokens verify at most until the cache expires, the new key's from then on")


def confusion(s: Stack) -> None:
    """4. Forged tokens with the current kid and a real token's claims."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    real = s.issue("real", "B")
    s.expect(real, 200, "the model for the forgeries")
    (published,) = s.jwks()
    public = jwt.algorithms.RSAAlgorithm.from_jwk(published)
    body = b64url(json.dumps(real.claims).encode())

    def unsigned(alg):
        return f"{b64url(json.dumps({'alg': alg, 'typ': 'JWT', 'kid': real.kid}).encode())}.{body}"

    for name in ("SubjectPublicKeyInfo", "PKCS1"):
        pem = public.public_bytes(serialization.Encoding.PEM, getattr(serialization.PublicFormat, name))
        # PyJWT refuses a PEM as an HMAC secret, so the forgery is signed by hand.
        message = unsigned("HS256")
        forged = Token(f"HS256 keyed with the published key's {name} PEM",
                       f"{message}.{b64url(hmac.new(pem, message.encode(), hashlib.sha256).digest())}")
        s.expect(forged, 401, "an HMAC token keyed with the public key (alg confusion)")
        ok(f"{forged.label}: 401")
    other = ec.generate_private_key(ec.SECP256R1())
    es256 = Token("ES256 of some P-256 key", jwt.encode(real.claims, other, "ES256", headers={"kid": real.kid}))
    s.expect(es256, 401, "ES256: the HTTP API's authorizer takes RSA only")
    ok(f"{es256.label}: 401")
    none = Token("alg none", unsigned("none") + ".")
    s.expect(none, 401, "an unsigned token")
    ok(f"{none.label}: 401")


def refused_redeploy(s: Stack) -> None:
    """5. A redeploy CloudFormation would refuse (the template's rule: two different slots) is
    refused before anything changes, and says why."""
    before = s.jwks()
    run = subprocess.run([hosts.STACK, "redeploy", "--data-dir", s.host.data, "--parameter-overrides",
                          "SigningKeySlot=B", "StandbyKeySlot=B"], capture_output=True, text=True, check=False)
    if run.returncode == 0 or "StandbyKeySlot must be another slot" not in run.stderr + run.stdout:
        fail(f"a redeploy breaking the template's rule: {run.returncode} {run.stdout!r} {run.stderr!r}")
    if s.jwks() != before:
        fail("a refused redeploy changed the published keys")
    ok("a redeploy the template's rules refuse changes nothing and says why")


def claims(s: Stack) -> None:
    """5. The authorizer's claim checks (the HTTP API page's step 4), on tokens the signing key
    itself signs (KMS `Sign` on the emulator, as only the token function may on AWS), and a
    route's scopes with a token the token endpoint narrowed (`scope`)."""
    import boto3

    kms = boto3.client("kms", endpoint_url=s.state["endpoint"], region_name=s.state["region"],
                       **s.state["credentials"])
    real = s.issue("model", "B")
    now = int(s.now())

    def signed(label, **changes):
        head = b64url(json.dumps(real.head).encode())
        body = b64url(json.dumps({**real.claims, **changes}).encode())
        digest = hashlib.sha256(f"{head}.{body}".encode()).digest()
        sig = kms.sign(KeyId=real.kid, Message=digest, MessageType="DIGEST",
                       SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]
        return Token(label, f"{head}.{body}.{b64url(sig)}")

    s.expect(signed("re-signed unchanged"), 200, "the same claims, signed again by the key")
    for label, changes in [("another iss", {"iss": "https://elsewhere.example/"}),
                           ("another aud", {"aud": "someone-else"}),
                           ("expired", {"exp": now - 5}),
                           ("nbf ahead", {"nbf": now + 600}),
                           ("iat ahead", {"iat": now + 600})]:
        s.expect(signed(label, **changes), 401, f"{label}: the authorizer refuses it")
        ok(f"claims: {label}: 401")
    cid, secret = s.client
    basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
    _, raw = call_token(s, basic, '{"grant_type":"client_credentials","scope":"read:shopping"}')
    read_only = Token("read:shopping only", json.loads(raw)["access_token"])
    s.expect(read_only, 200, "a read route with a read scope")
    status, raw = call("POST", f"{s.host.base}/v1/accounts/{AID}/shopping/draft_orders", read_only.raw,
                       {"order": {"currency": "NOK"}})
    # The template's routes name no authorization scopes (the functions check them, in the
    # upstream error shape), so the gateway passes the request on and the function refuses it.
    code = (as_json(raw) or {}).get("error", {}).get("code") if status == 403 else None
    if code != "FORBIDDEN":
        fail(f"a write route with a read-only token: {status} {raw[:300]!r}, expected 403 FORBIDDEN")
    ok("claims: a token narrowed to read:shopping is refused a write (403 FORBIDDEN)")


def call_token(s: Stack, basic: str, body: str):
    req = urllib.request.Request(f"{s.host.base}/v1/accounts/{AID}/auth/token", method="POST", data=body.encode(),
                                 headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(req, timeout=30) as res:
        return res.status, res.read()


def key_material(s: Stack) -> None:
    """6. The table's items and every record of its stream, from the trim horizon."""
    import boto3

    def aws(service):
        return boto3.client(service, endpoint_url=s.state["endpoint"], region_name=s.state["region"],
                            **s.state["credentials"])

    def strings(value):
        for kind, v in value.items():
            if kind in ("S", "N"):
                yield v
            elif kind == "B":
                yield v.decode("latin-1")
            elif kind in ("SS", "NS"):
                yield from v
            elif kind == "BS":
                yield from (b.decode("latin-1") for b in v)
            elif kind == "L":
                for x in v:
                    yield from strings(x)
            elif kind == "M":
                for k, x in v.items():
                    yield k
                    yield from strings(x)

    def check(item, where):
        pk = item.get("pk", {}).get("S", "")
        if pk.startswith("AUTH#KEYS"):
            fail(f"{where}: an item under {pk}: {item}")
        for name, value in item.items():
            for text in (name, *strings(value)):
                if "BEGIN" in text or "CLIENT_HASH" in text:
                    fail(f"{where}: item {pk}, attribute {name} holds {text[:200]!r}")

    table = s.state["resources"]["Table"]
    items = 0
    for page in aws("dynamodb").get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            check(item, "the table")
            items += 1
    streams = aws("dynamodbstreams")
    arn = aws("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shards, records, start = 0, 0, {}
    while True:
        described = streams.describe_stream(StreamArn=arn, **start)["StreamDescription"]
        for shard in described["Shards"]:
            shards += 1
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while iterator:
                got = streams.get_records(ShardIterator=iterator, Limit=1000)
                for rec in got["Records"]:
                    for image in ("Keys", "NewImage", "OldImage"):
                        check(rec["dynamodb"].get(image, {}), f"stream record {rec['eventID']} ({image})")
                    records += 1
                iterator = got.get("NextShardIterator") if got["Records"] else None
        if not described.get("LastEvaluatedShardId"):
            break
        start = {"ExclusiveStartShardId": described["LastEvaluatedShardId"]}
    if not items or not records:
        fail(f"nothing to look at: {items} items, {records} stream records")
    ok(f"no key material in the table ({items} items) or its stream ({records} records in {shards} shards)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", required=True, help="the data directory of a running tests/stack up")
    args = parser.parse_args()
    s = Stack(args.stack)
    fetched = rotation(s)
    fetched = negative_control(s, fetched)
    compromise(s, fetched)
    confusion(s)
    claims(s)
    refused_redeploy(s)
    key_material(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
