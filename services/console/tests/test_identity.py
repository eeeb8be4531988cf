"""The console's one module for tokens: it verifies with the platform key, mints only where it
may sign, and refuses what the platform refuses."""

from __future__ import annotations

import time

import pytest

from console_service.adapters.identity import Identity, Unauthenticated
from salesplatform.auth import mint
from salesplatform.events import Actor, Role

KEY = "console-test-key-0123456789abcdef"
SUPERVISOR = Actor(id="sv1", role=Role.supervisor, district="d1", area="a1")


def test_a_platform_token_names_its_viewer_and_expiry() -> None:
    token = mint(SUPERVISOR, KEY, ttl_seconds=600)
    viewer = Identity(KEY).viewer(f"Bearer {token}")
    assert viewer.actor == SUPERVISOR and viewer.token == token
    assert 590 <= viewer.seconds_left() <= 600


def test_tokens_the_platform_would_refuse_are_refused() -> None:
    identity = Identity(KEY)
    with pytest.raises(Unauthenticated):
        identity.viewer(mint(SUPERVISOR, "another-key-0123456789abcdef-0123456789"))
    with pytest.raises(Unauthenticated):
        identity.viewer(mint(SUPERVISOR, KEY, ttl_seconds=-5))
    with pytest.raises(Unauthenticated) as missing:
        identity.viewer("  ")
    assert missing.value.code == "missing_token"
    with pytest.raises(Unauthenticated):
        identity.viewer("not.a.token")


def test_only_a_console_holding_the_signing_key_mints() -> None:
    assert not Identity(KEY).can_mint
    with pytest.raises(Unauthenticated):
        Identity(KEY).mint(SUPERVISOR, ttl_seconds=60)
    local = Identity(KEY, signing_key=KEY)
    viewer = local.mint(SUPERVISOR, ttl_seconds=3600)
    assert Identity(KEY).viewer(viewer.token).actor == SUPERVISOR
    assert viewer.expires_at == pytest.approx(time.time() + 3600, abs=5)
