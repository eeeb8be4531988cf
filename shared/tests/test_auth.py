"""Bearer tokens: verified once and remembered, but never past their expiry."""

from __future__ import annotations

import time

import jwt
import pytest

from salesplatform import auth
from salesplatform.errors import Unauthenticated
from salesplatform.events import Actor, Role

SECRET = "auth-test-secret-auth-test-secret"
REP = Actor(id="r1", role=Role.rep, district="d1")


def test_a_token_verifies_to_its_actor_and_again_from_memory() -> None:
    token = auth.mint(REP, SECRET)
    assert auth.actor_from_header(f"Bearer {token}", SECRET) == REP
    assert auth.actor_from_header(f"Bearer {token}", SECRET) == REP
    with pytest.raises(Unauthenticated):
        auth.actor_from_header(f"Bearer {token}", "another-secret-another-secret-xx")


def test_a_remembered_token_is_refused_once_it_expires(monkeypatch) -> None:
    token = auth.mint(REP, SECRET, ttl_seconds=60)
    assert auth.verify(token, SECRET) == REP
    later = time.time() + 120
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(Unauthenticated) as refused:
        auth.verify(token, SECRET)
    assert refused.value.code == "invalid_token"


def test_a_token_without_expiry_or_with_a_bad_signature_is_refused() -> None:
    forever = jwt.encode({"sub": "r1", "role": "rep", "iss": auth.ISSUER}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated):
        auth.verify(forever, SECRET)
    forged = auth.mint(REP, SECRET)[:-2] + "xx"
    with pytest.raises(Unauthenticated):
        auth.verify(forged, SECRET)
