"""Identity: bearer tokens (JWT signed with Ed25519, `alg` EdDSA, with a key id) carrying the actor.

HTTP sends `Authorization: Bearer <token>`; NATS messages carry the same value in an
`Authorization` header. Services hold only public keys: a JWKS document (`AUTH_JWKS` inline,
`AUTH_JWKS_FILE`, or `AUTH_JWKS_URL`), which may list several keys at once and is read again
without a restart (a changed file, or the URL fetched again every `AUTH_JWKS_REFRESH_SECONDS`).
Minting needs a private key: `mint(actor, load_signing_key())`.

A key directory (`.run/auth/` under `make run`) holds `public/jwks.json` (what services read),
`signing-key.json` (the private key tokens are signed with) and, during a rotation,
`next-signing-key.json`. The rotation adds a key to the set, switches the signer once every
service has it, and retires the old key once no token it signed can still be valid:

    python -m salesplatform.auth keys add
    python -m salesplatform.auth keys switch
    python -m salesplatform.auth keys retire --kid <old key id>
    python -m salesplatform.auth mint --role sales_manager --id m1
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from pydantic import ValidationError

from salesplatform.errors import ServiceError, Unauthenticated
from salesplatform.events import Actor, Role

log = structlog.get_logger(__name__)

ALGORITHM = "EdDSA"
ISSUER = "salesplatform"
DEFAULT_TTL_SECONDS = 12 * 3600
# Where `make run` keeps its keys, and where the command line looks when nothing is set.
LOCAL_KEYS_DIR = Path(".run/auth")
# The public key set sits in a directory of its own, which can be handed to services (mounted
# into containers) without the private keys beside it.
JWKS_FILE = "public/jwks.json"
SIGNING_KEY_FILE = "signing-key.json"
NEXT_SIGNING_KEY_FILE = "next-signing-key.json"
# A rotation's safe waits: services see a new key within their refresh interval (5 minutes by
# default) before tokens are signed with it; an old key stays until the tokens it signed can
# no longer be valid (their 12 hours, plus the 72 hours a queued command may wait).
PROPAGATION_SECONDS = 600.0
RETIRE_AFTER_SECONDS = DEFAULT_TTL_SECONDS + 72 * 3600.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A private Ed25519 key and its id (`kid`), for minting tokens."""

    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        return cls(kid or f"{stamp}-{secrets.token_hex(4)}", Ed25519PrivateKey.generate())

    def public_jwk(self) -> dict[str, Any]:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def private_jwk(self) -> dict[str, Any]:
        raw = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return {**self.public_jwk(), "d": _b64(raw)}

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> SigningKey:
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not jwk.get("d") or not jwk.get("kid"):
            raise ValueError("not a private Ed25519 JWK with a kid")
        return cls(str(jwk["kid"]), Ed25519PrivateKey.from_private_bytes(_unb64(str(jwk["d"]))))


def mint(actor: Actor, signing_key: SigningKey, *, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    """A token naming `actor`, signed with `signing_key`, valid for `ttl_seconds`."""
    if actor.role is Role.service:
        raise ValueError("a service acts on its own behalf inside its process: no token carries that role")
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
    return jwt.encode(claims, signing_key.private_key, algorithm=ALGORITHM, headers={"kid": signing_key.kid})


def load_signing_key(path: str | Path | None = None) -> SigningKey:
    """The local signing key: `path`, else AUTH_SIGNING_KEY_FILE, else `make run`'s
    `.run/auth/signing-key.json`."""
    chosen = Path(path or os.environ.get("AUTH_SIGNING_KEY_FILE") or LOCAL_KEYS_DIR / SIGNING_KEY_FILE)
    try:
        return SigningKey.from_jwk(json.loads(chosen.read_text()))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no signing key at {chosen}: set AUTH_SIGNING_KEY_FILE or start the system with `make run` first"
        ) from None


def public_key_of(jwk: Mapping[str, Any]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
        raise ValueError(f"key {jwk.get('kid')!r} is not an Ed25519 public key")
    return Ed25519PublicKey.from_public_bytes(_unb64(jwk["x"]))


@dataclass(frozen=True)
class KeySet:
    """The public keys tokens are verified with, by key id."""

    keys: Mapping[str, Ed25519PublicKey]

    @classmethod
    def from_jwks(cls, document: str | bytes | Mapping[str, Any]) -> KeySet:
        """A JWKS document (`{"keys": [...]}`); every key must be Ed25519 with a kid."""
        doc = json.loads(document) if isinstance(document, str | bytes) else document
        if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
            raise ValueError('a JWKS document is an object with a "keys" list')
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in doc["keys"]:
            if not isinstance(jwk, Mapping) or not jwk.get("kid"):
                raise ValueError("every key of the set needs a kid")
            keys[str(jwk["kid"])] = public_key_of(jwk)
        return cls(keys)


# --- where a service finds the key set --------------------------------------------------------


class KeySource:
    """The current key set; `current()` is called on every verification that is not cached,
    so it must be cheap."""

    def current(self) -> KeySet | None:
        raise NotImplementedError

    def missing(self, kid: str) -> None:
        """A token named a key the set lacks: a source that can look again early does."""

    async def start(self) -> None:
        """Begin any background refreshing."""

    async def stop(self) -> None:
        """End it."""


class StaticKeys(KeySource):
    """A key set given inline (AUTH_JWKS): changed only by a restart."""

    def __init__(self, keys: KeySet) -> None:
        self._keys = keys

    def current(self) -> KeySet:
        return self._keys


class KeyFile(KeySource):
    """A JWKS file (AUTH_JWKS_FILE), read again when it changes. Its state is looked at no more
    than once every `check_every` seconds, and at once when a token names an unknown key. A file
    that does not parse leaves the last good set in place."""

    def __init__(self, path: str | Path, *, check_every: float = 1.0) -> None:
        self.path = Path(path)
        self.check_every = check_every
        self._keys: KeySet | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._check(force=True)

    def current(self) -> KeySet | None:
        if time.monotonic() - self._checked >= self.check_every:
            self._check()
        return self._keys

    def missing(self, kid: str) -> None:
        self._check()

    def _check(self, force: bool = False) -> None:
        self._checked = time.monotonic()
        try:
            info = self.path.stat()
        except OSError as exc:
            if force:
                raise ValueError(f"cannot read the key set {self.path}: {exc}") from None
            return
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        if stamp == self._stamp:
            return
        try:
            keys = KeySet.from_jwks(self.path.read_bytes())
        except (OSError, ValueError) as exc:
            if force:
                raise ValueError(f"cannot read the key set {self.path}: {exc}") from None
            log.warning("key_set_unreadable", path=str(self.path), error=str(exc))
            return
        self._stamp = stamp
        if self._keys is not None:
            log.info("key_set_reloaded", path=str(self.path), kids=sorted(keys.keys))
        self._keys = keys


class KeyUrl(KeySource):
    """A JWKS document fetched from a URL (AUTH_JWKS_URL) at start and every `refresh_seconds`
    after; a token naming an unknown key asks for an early fetch (at most one every
    `min_interval` seconds). Until the first fetch succeeds no token verifies; fetching goes on
    with a backoff while the URL is unreachable."""

    def __init__(self, url: str, *, refresh_seconds: float = 300.0, min_interval: float = 10.0) -> None:
        self.url = url
        self.refresh_seconds = refresh_seconds
        self.min_interval = min_interval
        self._keys: KeySet | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_fetch = 0.0

    def current(self) -> KeySet | None:
        return self._keys

    def missing(self, kid: str) -> None:
        if self._wake is not None and time.monotonic() - self._last_fetch >= self.min_interval:
            self._wake.set()

    async def fetch(self) -> KeySet:
        def get() -> bytes:
            with urllib.request.urlopen(self.url, timeout=10) as response:
                body: bytes = response.read()
                return body

        self._last_fetch = time.monotonic()
        keys = KeySet.from_jwks(await asyncio.to_thread(get))
        if self._keys is None or set(keys.keys) != set(self._keys.keys):
            log.info("key_set_fetched", url=self.url, kids=sorted(keys.keys))
        self._keys = keys
        return keys

    async def start(self) -> None:
        self._wake = asyncio.Event()
        with contextlib.suppress(Exception):
            await self.fetch()
        self._task = asyncio.create_task(self._refresh(), name="jwks-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _refresh(self) -> None:
        assert self._wake is not None
        backoff = 1.0
        while True:
            wait = self.refresh_seconds if self._keys is not None else backoff
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            try:
                await self.fetch()
                backoff = 1.0
            except Exception as exc:  # noqa: BLE001 - the last good set stays; try again later
                log.warning("key_set_fetch_failed", url=self.url, error=repr(exc))
                backoff = min(backoff * 2, 60.0)


# --- verification ------------------------------------------------------------------------------


class KeysUnavailable(ServiceError):
    """No key set has been read yet (its URL unreachable since the start): nothing about the
    token is known, so the request is not refused as unauthenticated but told to come back."""

    status = 503
    code = "keys_unavailable"


class TokenVerifier:
    """Verifies bearer tokens against the key set of its source.

    Verified tokens are remembered with their actor, key id and expiry (bounded): a system
    publishing thousands of messages with one token has its signature checked once. A
    remembered token still needs its key in the current set and must not have expired at the
    moment asked about (`at`, by default now).
    """

    def __init__(self, source: KeySource, *, remember: int = 4096) -> None:
        self.source = source
        self.remember = remember
        self._verified: dict[str, tuple[Actor, float, str]] = {}
        self._keys_seen: KeySet | None = None

    async def start(self) -> None:
        await self.source.start()

    async def stop(self) -> None:
        await self.source.stop()

    @property
    def ready(self) -> bool:
        return self.source.current() is not None

    def verify(self, token: str, *, at: float | None = None) -> Actor:
        """The actor of `token` if it was valid at `at` (epoch seconds, default now)."""
        keys = self.source.current()
        if keys is None:
            raise KeysUnavailable("the token signing keys are not loaded yet: try again shortly")
        if keys is not self._keys_seen:  # a new set: what was verified with a retired key goes
            self._verified.clear()
            self._keys_seen = keys
        moment = time.time() if at is None else at
        known = self._verified.get(token)
        if known is None:
            known = self._check(token, keys)
            if known[2] not in keys.keys:
                return self.verify(token, at=at)  # the set changed while looking for the key
            if len(self._verified) >= self.remember:
                self._verified.clear()
            self._verified[token] = known
        actor, expires, _ = known
        if moment >= expires:
            raise Unauthenticated("invalid token: Signature has expired", code="invalid_token")
        return actor

    def _check(self, token: str, keys: KeySet) -> tuple[Actor, float, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}", code="invalid_token") from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise Unauthenticated(f"invalid token: signed with {ALGORITHM} and a kid only", code="invalid_token")
        key = keys.keys.get(kid)
        if key is None:
            self.source.missing(kid)
            key = (self.source.current() or keys).keys.get(kid)
            if key is None:
                raise Unauthenticated(f"invalid token: unknown signing key {kid}", code="invalid_token")
        try:
            # Expiry is judged by the caller at the moment that counts (a queued command's).
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "iat"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}", code="invalid_token") from None
        try:
            actor = Actor(
                id=claims["sub"], role=claims["role"], district=claims.get("district"), area=claims.get("area")
            )
            expires = float(claims["exp"])
        except (KeyError, ValidationError, TypeError, ValueError) as exc:
            raise Unauthenticated(f"token lacks a valid actor: {exc}", code="invalid_token") from None
        if actor.role is Role.service:
            raise Unauthenticated("a service identity is never carried by a token", code="invalid_token")
        return actor, expires, kid

    def actor_from_header(self, value: str | None, *, at: float | None = None) -> Actor:
        if not value:
            raise Unauthenticated("a bearer token is required", code="missing_token")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("use 'Authorization: Bearer <token>'", code="missing_token")
        return self.verify(token.strip(), at=at)


def actor_from_header(value: str | None, verifier: TokenVerifier, *, at: float | None = None) -> Actor:
    """The actor of an `Authorization: Bearer <token>` header value."""
    return verifier.actor_from_header(value, at=at)


def key_source(
    *, jwks: str | None = None, jwks_file: str | None = None, jwks_url: str | None = None, refresh_seconds: float = 300
) -> KeySource:
    """The one source of public keys the settings name."""
    given = [
        name
        for name, value in (("AUTH_JWKS", jwks), ("AUTH_JWKS_FILE", jwks_file), ("AUTH_JWKS_URL", jwks_url))
        if value
    ]
    if len(given) != 1:
        raise ValueError(f"set exactly one of AUTH_JWKS, AUTH_JWKS_FILE and AUTH_JWKS_URL (given: {given or 'none'})")
    if jwks:
        return StaticKeys(KeySet.from_jwks(jwks))
    if jwks_file:
        return KeyFile(jwks_file)
    assert jwks_url is not None
    return KeyUrl(jwks_url, refresh_seconds=refresh_seconds)


# --- the key directory and its rotation -----------------------------------------------------


class RotationRefused(Exception):
    """A rotation step that would reject tokens still valid; the message says what to wait for."""


def _write_private(path: Path, data: Mapping[str, Any], mode: int = 0o600) -> None:
    """Replace `path` at once (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    tmp.replace(path)


def _read_jwks(directory: Path) -> dict[str, Any]:
    path = directory / JWKS_FILE
    if not path.exists():
        return {"keys": []}
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def init_keys(directory: Path) -> SigningKey:
    """The directory's signing key, made with its key set if there is none yet."""
    path = directory / SIGNING_KEY_FILE
    if path.exists():
        return load_signing_key(path)
    key = SigningKey.generate()
    doc = _read_jwks(directory)
    doc["keys"] = [*doc["keys"], key.public_jwk()]
    _write_private(directory / JWKS_FILE, doc, 0o644)
    _write_private(path, key.private_jwk())
    return key


def add_key(directory: Path) -> SigningKey:
    """Step 1: a new key joins the key set (services accept its tokens once they see it);
    tokens are still signed with the current key."""
    if (directory / NEXT_SIGNING_KEY_FILE).exists():
        raise RotationRefused(f"a key was added already ({NEXT_SIGNING_KEY_FILE}): switch to it first")
    key = SigningKey.generate()
    doc = _read_jwks(directory)
    doc["keys"] = [*doc["keys"], key.public_jwk()]
    _write_private(directory / JWKS_FILE, doc, 0o644)
    _write_private(directory / NEXT_SIGNING_KEY_FILE, {**key.private_jwk(), "added_at": time.time()})
    return key


def switch_signer(directory: Path, *, propagation_seconds: float = PROPAGATION_SECONDS) -> SigningKey:
    """Step 2: tokens are signed with the added key from now on. Refused until the key has been
    in the set for `propagation_seconds` (every service has read the set again by then). The
    old key stays in the set, marked with when it stopped signing."""
    next_path = directory / NEXT_SIGNING_KEY_FILE
    if not next_path.exists():
        raise RotationRefused("no key was added: run `keys add` first")
    pending = json.loads(next_path.read_text())
    waited = time.time() - float(pending.get("added_at", 0))
    if waited < propagation_seconds:
        raise RotationRefused(
            f"the new key joined the set {waited:.0f} s ago: switch after {propagation_seconds:.0f} s, "
            "when every service has read the set again"
        )
    old = load_signing_key(directory / SIGNING_KEY_FILE)
    new = SigningKey.from_jwk(pending)
    doc = _read_jwks(directory)
    for jwk in doc["keys"]:
        if jwk.get("kid") == old.kid:
            jwk["signed_until"] = int(time.time())
    _write_private(directory / JWKS_FILE, doc, 0o644)
    _write_private(directory / SIGNING_KEY_FILE, new.private_jwk())
    next_path.unlink()
    return new


def retire_key(directory: Path, kid: str, *, retire_after_seconds: float = RETIRE_AFTER_SECONDS) -> None:
    """Step 3: the old key leaves the set; its tokens are refused from then on. Refused while a
    token it signed could still be valid or waiting in a queue (`retire_after_seconds` after
    it stopped signing), and for the key that signs now."""
    if load_signing_key(directory / SIGNING_KEY_FILE).kid == kid:
        raise RotationRefused(f"{kid} signs tokens now: add and switch to another key first")
    doc = _read_jwks(directory)
    found = [jwk for jwk in doc["keys"] if jwk.get("kid") == kid]
    if not found:
        raise RotationRefused(f"no key {kid} in the set")
    signed_until = float(found[0].get("signed_until", time.time()))
    left = signed_until + retire_after_seconds - time.time()
    if left > 0:
        raise RotationRefused(
            f"tokens signed with {kid} may still be valid or queued for {left / 3600:.1f} h: retire it after that"
        )
    doc["keys"] = [jwk for jwk in doc["keys"] if jwk.get("kid") != kid]
    _write_private(directory / JWKS_FILE, doc, 0o644)


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salesplatform.auth")
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mint", help="mint a token (needs the private signing key)")
    m.add_argument("--role", required=True, choices=[r.value for r in Role if r is not Role.service])
    m.add_argument("--id", required=True)
    m.add_argument("--district")
    m.add_argument("--area")
    m.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="seconds")
    m.add_argument("--key", type=Path, help="private key file (default AUTH_SIGNING_KEY_FILE or .run/auth)")
    keys = sub.add_parser("keys", help="the key directory: init, add, switch, retire, show")
    keys.add_argument("action", choices=["init", "add", "switch", "retire", "show"])
    keys.add_argument("--dir", type=Path, default=Path(os.environ.get("AUTH_KEYS_DIR") or LOCAL_KEYS_DIR))
    keys.add_argument("--kid", help="the key to retire")
    keys.add_argument(
        "--propagation-seconds",
        type=float,
        default=PROPAGATION_SECONDS,
        help="switch: how long the new key must be known",
    )
    keys.add_argument(
        "--retire-after-hours",
        type=float,
        default=RETIRE_AFTER_SECONDS / 3600,
        help="retire: hours after the key stopped signing (longest token life plus longest queue wait)",
    )
    args = parser.parse_args(argv)
    if args.cmd == "mint":
        actor = Actor(id=args.id, role=args.role, district=args.district, area=args.area)
        try:
            key = load_signing_key(args.key)
        except FileNotFoundError as exc:
            raise SystemExit(str(exc)) from None
        sys.stdout.write(mint(actor, key, ttl_seconds=args.ttl) + "\n")
        return 0
    try:
        if args.action == "init":
            key = init_keys(args.dir)
            print(f"signing with {key.kid}; key set in {args.dir / JWKS_FILE}")
        elif args.action == "add":
            key = add_key(args.dir)
            print(f"added {key.kid} to the key set; switch to it once every service has read the set")
        elif args.action == "switch":
            key = switch_signer(args.dir, propagation_seconds=args.propagation_seconds)
            print(f"signing with {key.kid}; retire the old key once its tokens have expired")
        elif args.action == "retire":
            if not args.kid:
                parser.error("retire needs --kid")
            retire_key(args.dir, args.kid, retire_after_seconds=args.retire_after_hours * 3600)
            print(f"retired {args.kid}")
        else:
            print(json.dumps(_read_jwks(args.dir), indent=2))
    except RotationRefused as exc:
        raise SystemExit(f"refused: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
