"""API Gateway's JWT authorizer, as the HTTP API runs it, and its key cache."""

import json
import threading

import jwt

from .payload import gateway_answer

# How long the JWT authorizer keeps the issuer's keys, on the emulated clock, with no fetch for a
# kid it has not seen. The REST API's "Signing keys and troubleshooting JWT authorizers"
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/rest-api-jwt-authorizer-keys.html)
# caches them "for up to 1 hour on a best-effort basis" and, for a key it hasn't seen, "retrieves
# the key set again"; but that is the REST API. The HTTP API's page (see Authorizer) promises no
# fetch for an unseen kid, and its China-region edition (docs.amazonaws.cn) says in the same step
# that API Gateway can cache the public keys for two hours. So the harness takes the harsher
# reading: two hours, and a token signed by a key the cache lacks is 401 until the cache expires.
KEY_CACHE_SECONDS = 7200


class Authorizer:
    """API Gateway's JWT authorizer: the token from the identity source (with or without
    `Bearer `), its signature by an RSA key of the issuer's JWKS (found through the issuer's
    discovery document), `iss` equal to the issuer, `aud` (or `client_id`) one of the
    audiences, `exp`, `nbf` and `iat` against the clock, and a route's scopes. One per authorizer
    configuration: its key cache outlives redeployed functions, as API Gateway's does."""

    # "Control access to HTTP APIs with JWT authorizers in API Gateway"
    # (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html),
    # step 3 of its workflow: "Check the token's algorithm and signature by using the public key
    # that is fetched from the issuer's jwks_uri. Currently, only RSA-based algorithms are
    # supported." So ES256, HS256 (a public key used as an HMAC secret included) and `none` are 401.
    ALGORITHMS = ("RS256", "RS384", "RS512")

    def __init__(self, issuer, audiences, fetch, world):
        self.issuer, self.audiences, self.fetch, self.world = issuer, audiences, fetch, world
        self.keys, self.fetched_at, self.lock = {}, None, threading.Lock()

    def key(self, kid):
        """The issuer's JWK `kid`: the keys are fetched on first need, then kept for
        KEY_CACHE_SECONDS of the emulated clock whatever kid a token names."""
        with self.lock:
            if self.fetched_at is None or self.world.now() - self.fetched_at >= KEY_CACHE_SECONDS:
                discovery = json.loads(self.fetch(self.issuer.rstrip("/") + "/.well-known/openid-configuration"))
                jwks = json.loads(self.fetch(discovery["jwks_uri"]))
                self.keys = {k["kid"]: k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid")}
                self.fetched_at = self.world.now()
            return self.keys.get(kid)

    def claims(self, header, scopes):
        """The token's claims, or an API Gateway answer refusing the request."""
        if not header:
            return refused(401, "no token in the Authorization header")
        token = header[7:].strip() if header[:7].lower() == "bearer " else header.strip()
        try:
            head = jwt.get_unverified_header(token)
            alg = head.get("alg")
            if alg not in self.ALGORITHMS:
                return refused(401, f"algorithm {alg} is not accepted (RSA only)")
            jwk = self.key(head.get("kid"))
            if jwk is None:
                return refused(401, f"the cached keys have no kid {head.get('kid')!r}")
            if jwk.get("kty") != "RSA" or jwk.get("alg", alg) != alg:
                return refused(401, f"the key is {jwk.get('kty')} {jwk.get('alg')}, the token {alg}")
            claims = jwt.decode(token, jwt.algorithms.RSAAlgorithm.from_jwk(jwk), algorithms=[alg],
                                options={"verify_aud": False, "verify_iss": False, "verify_exp": False,
                                         "verify_nbf": False, "verify_iat": False})
        except Exception as e:  # noqa: BLE001 - every malformed or unverifiable token is refused alike
            return refused(401, f"the token does not verify: {type(e).__name__}: {e}")
        now = self.world.now()
        aud = claims.get("aud", claims.get("client_id"))
        auds = aud if isinstance(aud, list) else [aud]
        if claims.get("iss") != self.issuer:
            return refused(401, f"iss {claims.get('iss')!r} is not the issuer {self.issuer!r}")
        if not set(auds) & set(self.audiences):
            return refused(401, f"aud {aud!r} is none of {self.audiences}")
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now:
            return refused(401, "the token has expired")
        if claims.get("nbf", 0) > now or claims.get("iat", 0) > now:
            return refused(401, "the token is not valid yet (nbf or iat)")
        granted = str(claims.get("scope", claims.get("scp", ""))).split()
        if scopes and not set(scopes) & set(granted):
            return refused(403, "the token has none of the route's scopes")
        return claims


def refused(status, why):
    """API Gateway's answer to a refused token; `why` goes to the log (its authorizerError)."""
    answer = gateway_answer(status, "Unauthorized" if status == 401 else "Forbidden")
    return answer + ({"why": why},)


def claim_text(v):
    """API Gateway hands claims to the integration as strings."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + " ".join(claim_text(x) for x in v) + "]"
    if isinstance(v, dict):
        return json.dumps(v, separators=(",", ":"))
    return str(v)
