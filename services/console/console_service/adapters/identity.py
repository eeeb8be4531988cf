"""Who is looking: the one place where the console verifies and mints platform tokens.

Everything goes through `salesplatform.auth`, so a change of the platform's token scheme (its
algorithm, its key set) changes the few lines here and nothing else in the console. The console
never judges what a viewer may see: it hands the token to the APIs, which decide.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from salesplatform import auth
from salesplatform.auth import SigningKey, TokenVerifier
from salesplatform.errors import Unauthenticated
from salesplatform.events import Actor

__all__ = ["Identity", "Unauthenticated", "Viewer"]


@dataclass(frozen=True)
class Viewer:
    """A signed-in person: the token the APIs get, the actor it names, when it expires."""

    token: str
    actor: Actor
    expires_at: float

    def seconds_left(self) -> int:
        return max(0, int(self.expires_at - time.time()))


class Identity:
    """Verifies tokens with the platform's public key set; mints them only where the console
    holds the private key (the local sign-in of `make run`)."""

    def __init__(self, verifier: TokenVerifier, *, signing_key: SigningKey | None = None) -> None:
        self._verifier = verifier
        self._signing_key = signing_key

    @property
    def can_mint(self) -> bool:
        return self._signing_key is not None

    def viewer(self, token: str) -> Viewer:
        """The viewer a token names; `Unauthenticated` if it is not valid (signature, issuer,
        expiry, actor)."""
        token = token.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token:
            raise Unauthenticated("a token is required", code="missing_token")
        actor = self._verifier.verify(token)
        # The signature was checked just now; the expiry is read for the session cookie.
        claims = jwt.decode(token, options={"verify_signature": False})
        return Viewer(token=token, actor=actor, expires_at=float(claims["exp"]))

    def mint(self, actor: Actor, *, ttl_seconds: int) -> Viewer:
        if self._signing_key is None:
            raise Unauthenticated("this console does not sign tokens", code="signing_disabled")
        return self.viewer(auth.mint(actor, self._signing_key, ttl_seconds=ttl_seconds))
