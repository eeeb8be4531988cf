"""Identity: signed bearer tokens (JWT, HS256) carrying the actor.

HTTP sends `Authorization: Bearer <token>`; NATS messages carry the same value in an
`Authorization` header. `python -m salesplatform.auth mint --role rep --id r1 --district d1`
mints a token for local use with the secret from AUTH_JWT_SECRET (or .run/secrets.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jwt
from pydantic import ValidationError

from salesplatform.errors import Unauthenticated
from salesplatform.events import Actor, Role

ALGORITHM = "HS256"
ISSUER = "salesplatform"


def mint(actor: Actor, secret: str, *, ttl_seconds: int = 12 * 3600) -> str:
    now = int(time.time())
    claims = {
        "sub": actor.id,
        "role": actor.role.value,
        "district": actor.district,
        "area": actor.area,
        "iss": ISSUER,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


# Tokens verified lately, with their actor and expiry: a system publishing thousands of
# messages with one token is checked once, not once a message (each check is an HMAC and a
# JSON parse). Bounded; an expired token is refused as before.
_VERIFIED: dict[tuple[str, str], tuple[Actor, float]] = {}
_VERIFIED_MAX = 4096


def verify(token: str, secret: str) -> Actor:
    known = _VERIFIED.get((token, secret))
    if known is not None:
        actor, expires = known
        if time.time() < expires:
            return actor
        del _VERIFIED[(token, secret)]
    actor, expires = _verify(token, secret)
    if time.time() >= expires:
        raise Unauthenticated("invalid token: Signature has expired", code="invalid_token")
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(token, secret)] = (actor, expires)
    return actor


def _verify(token: str, secret: str) -> tuple[Actor, float]:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": ["exp", "sub"]})
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"invalid token: {exc}", code="invalid_token") from None
    try:
        actor = Actor(id=claims["sub"], role=claims["role"], district=claims.get("district"), area=claims.get("area"))
        return actor, float(claims["exp"])
    except (KeyError, ValidationError, TypeError, ValueError) as exc:
        raise Unauthenticated(f"token lacks a valid actor: {exc}", code="invalid_token") from None


def actor_from_header(value: str | None, secret: str) -> Actor:
    if not value:
        raise Unauthenticated("a bearer token is required", code="missing_token")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("use 'Authorization: Bearer <token>'", code="missing_token")
    return verify(token.strip(), secret)


def _secret_from_env_or_run_dir() -> str:
    secret = os.environ.get("AUTH_JWT_SECRET")
    if secret:
        return secret
    path = Path(".run/secrets.json")
    if path.exists():
        return json.loads(path.read_text())["AUTH_JWT_SECRET"]
    raise SystemExit("set AUTH_JWT_SECRET or start the system with `make run` first")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salesplatform.auth")
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mint", help="mint a token for a local actor")
    m.add_argument("--role", required=True, choices=[r.value for r in Role])
    m.add_argument("--id", required=True)
    m.add_argument("--district")
    m.add_argument("--area")
    m.add_argument("--ttl", type=int, default=12 * 3600, help="seconds")
    args = parser.parse_args(argv)
    actor = Actor(id=args.id, role=args.role, district=args.district, area=args.area)
    sys.stdout.write(mint(actor, _secret_from_env_or_run_dir(), ttl_seconds=args.ttl) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
