"""The console's one module for tokens: it verifies with the platform's public keys, mints only
where it holds the private key, and refuses what the platform refuses."""

from __future__ import annotations

import time

import pytest

from console_service.adapters.identity import Identity, Unauthenticated
from salesplatform.auth import KeySet, SigningKey, StaticKeys, TokenVerifier, mint
from salesplatform.events import Actor, Role

pytestmark = pytest.mark.fast

KEY = SigningKey.generate("platform")
SUPERVISOR = Actor(id="sv1", role=Role.supervisor, district="d1", area="a1")


def platform_keys() -> TokenVerifier:
    """What the console verifies with: the platform's public key set, no private key."""
    return TokenVerifier(StaticKeys(KeySet.from_jwks({"keys": [KEY.public_jwk()]})))


def test_a_platform_token_names_its_viewer_and_expiry() -> None:
    token = mint(SUPERVISOR, KEY, ttl_seconds=600)
    viewer = Identity(platform_keys()).viewer(f"Bearer {token}")
    assert viewer.actor == SUPERVISOR and viewer.token == token
    assert 590 <= viewer.seconds_left() <= 600


def test_tokens_the_platform_would_refuse_are_refused() -> None:
    identity = Identity(platform_keys())
    with pytest.raises(Unauthenticated):
        identity.viewer(mint(SUPERVISOR, SigningKey.generate("platform")))  # the same kid, another key
    with pytest.raises(Unauthenticated):
        identity.viewer(mint(SUPERVISOR, KEY, ttl_seconds=-5))
    with pytest.raises(Unauthenticated) as missing:
        identity.viewer("  ")
    assert missing.value.code == "missing_token"
    with pytest.raises(Unauthenticated):
        identity.viewer("not.a.token")


def test_only_a_console_holding_the_signing_key_mints() -> None:
    assert not Identity(platform_keys()).can_mint
    with pytest.raises(Unauthenticated):
        Identity(platform_keys()).mint(SUPERVISOR, ttl_seconds=60)
    local = Identity(platform_keys(), signing_key=KEY)
    viewer = local.mint(SUPERVISOR, ttl_seconds=3600)
    assert Identity(platform_keys()).viewer(viewer.token).actor == SUPERVISOR
    assert viewer.expires_at == pytest.approx(time.time() + 3600, abs=5)
