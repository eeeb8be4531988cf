"""Bearer tokens: Ed25519 signatures with a key id, verified with public keys only, from a key
set that can hold several keys and changes without a restart; verified once and remembered,
but never past their expiry or their key's retirement."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from salesplatform import auth
from salesplatform.errors import Unauthenticated
from salesplatform.events import Actor, Role, service_actor
from salesplatform.settings import ServiceSettings

pytestmark = pytest.mark.fast

REP = Actor(id="r1", role=Role.rep, district="d1")
KEY = auth.SigningKey.generate("k1")
OTHER = auth.SigningKey.generate("k2")


def verifier(*keys: auth.SigningKey) -> auth.TokenVerifier:
    return auth.TokenVerifier(auth.StaticKeys(auth.KeySet.from_jwks({"keys": [k.public_jwk() for k in keys]})))


def write_jwks(path: Path, *keys: auth.SigningKey) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": [k.public_jwk() for k in keys]}))
    tmp.replace(path)


def test_a_token_verifies_to_its_actor_and_again_from_memory() -> None:
    tokens = verifier(KEY)
    token = auth.mint(REP, KEY)
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "k1", "typ": "JWT"}
    assert tokens.actor_from_header(f"Bearer {token}") == REP
    assert tokens.actor_from_header(f"Bearer {token}") == REP
    with pytest.raises(Unauthenticated) as refused:
        verifier(OTHER).verify(token)
    assert "unknown signing key k1" in refused.value.message


def test_a_key_set_accepts_tokens_of_each_of_its_keys() -> None:
    tokens = verifier(KEY, OTHER)
    assert tokens.verify(auth.mint(REP, KEY)) == REP
    assert tokens.verify(auth.mint(REP, OTHER)) == REP


def test_a_token_signed_by_another_key_under_a_known_kid_is_refused() -> None:
    impostor = auth.SigningKey(KEY.kid, auth.SigningKey.generate().private_key)
    with pytest.raises(Unauthenticated):
        verifier(KEY).verify(auth.mint(REP, impostor))


def test_a_remembered_token_is_refused_once_it_expires(monkeypatch) -> None:
    tokens = verifier(KEY)
    token = auth.mint(REP, KEY, ttl_seconds=60)
    assert tokens.verify(token) == REP
    later = time.time() + 120
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(Unauthenticated) as refused:
        tokens.verify(token)
    assert refused.value.code == "invalid_token"


def test_a_token_is_judged_at_the_moment_asked_about() -> None:
    """A queued command's token is judged when the command was stored, not now."""
    tokens = verifier(KEY)
    token = auth.mint(REP, KEY, ttl_seconds=-5)  # expired five seconds ago
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    with pytest.raises(Unauthenticated):
        tokens.verify(token)
    assert tokens.verify(token, at=expires - 1) == REP
    with pytest.raises(Unauthenticated):
        tokens.verify(token, at=expires)


def test_tokens_without_expiry_with_a_bad_signature_or_another_algorithm_are_refused() -> None:
    tokens = verifier(KEY)
    forever = jwt.encode(
        {"sub": "r1", "role": "rep", "iss": auth.ISSUER, "iat": int(time.time())},
        KEY.private_key,
        algorithm="EdDSA",
        headers={"kid": "k1"},
    )
    shared_secret = jwt.encode(
        {"sub": "r1", "role": "rep", "iss": auth.ISSUER, "exp": int(time.time()) + 60},
        "a-shared-secret-a-shared-secret!",
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    forged = auth.mint(REP, KEY)[:-2] + "xx"
    for token in (forever, shared_secret, forged, "not-a-token"):
        with pytest.raises(Unauthenticated):
            tokens.verify(token)


def test_no_token_carries_a_service_identity() -> None:
    with pytest.raises(ValueError):
        auth.mint(service_actor("orders"), KEY)
    claims = {"sub": "service:orders", "role": "service", "iss": auth.ISSUER, "iat": int(time.time())}
    token = jwt.encode(
        {**claims, "exp": int(time.time()) + 60}, KEY.private_key, algorithm="EdDSA", headers={"kid": "k1"}
    )
    with pytest.raises(Unauthenticated):
        verifier(KEY).verify(token)


def test_a_changed_key_file_is_read_again_and_a_retired_key_is_refused_at_once(tmp_path) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, KEY)
    tokens = auth.TokenVerifier(auth.KeyFile(path, check_every=0.0))
    old, new = auth.mint(REP, KEY), auth.mint(REP, OTHER)
    assert tokens.verify(old) == REP
    write_jwks(path, KEY, OTHER)
    assert tokens.verify(new) == REP  # an unknown kid makes it look at the file at once
    write_jwks(path, OTHER)
    with pytest.raises(Unauthenticated):
        tokens.verify(old)  # remembered, but its key left the set
    assert tokens.verify(new) == REP


def test_a_key_file_that_does_not_parse_keeps_the_last_good_set(tmp_path) -> None:
    path = tmp_path / "jwks.json"
    write_jwks(path, KEY)
    tokens = auth.TokenVerifier(auth.KeyFile(path, check_every=0.0))
    path.write_text('{"keys": [')
    assert tokens.verify(auth.mint(REP, KEY)) == REP
    with pytest.raises(ValueError):
        auth.KeyFile(path)  # at start a broken set is an error, not an empty set


def test_a_service_needs_exactly_one_key_source() -> None:
    base = {"database_url": "postgresql://x/y"}
    with pytest.raises(ValidationError):
        ServiceSettings(**base, jwks='{"keys": []}', jwks_url="http://127.0.0.1:1/jwks")
    assert ServiceSettings(**base).jwks is None  # enough to run the migrations
    with pytest.raises(ValueError, match="exactly one"):
        auth.key_source()  # not enough to serve: the runtime asks for its source at start
    assert isinstance(auth.key_source(jwks='{"keys": []}'), auth.StaticKeys)


class _JwksServer:
    def __init__(self) -> None:
        self.document = {"keys": [KEY.public_jwk()]}
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps(owner.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[_JwksServer]:
    server = _JwksServer()
    yield server
    server.close()


async def test_a_key_set_url_is_fetched_at_start_and_again_for_an_unknown_key(jwks_server) -> None:
    source = auth.KeyUrl(jwks_server.url, refresh_seconds=3600, min_interval=0.0)
    tokens = auth.TokenVerifier(source)
    assert not tokens.ready
    await tokens.start()
    try:
        assert tokens.ready and tokens.verify(auth.mint(REP, KEY)) == REP
        jwks_server.document = {"keys": [KEY.public_jwk(), OTHER.public_jwk()]}
        new = auth.mint(REP, OTHER)
        with pytest.raises(Unauthenticated):
            tokens.verify(new)  # not fetched yet; the unknown kid asks for a fetch
        for _ in range(100):
            if OTHER.kid in (source.current() or auth.KeySet({})).keys:
                break
            await asyncio.sleep(0.05)
        assert tokens.verify(new) == REP
        assert jwks_server.fetches == 2
    finally:
        await tokens.stop()


async def test_a_key_set_url_is_fetched_again_every_refresh_interval(jwks_server) -> None:
    source = auth.KeyUrl(jwks_server.url, refresh_seconds=0.2)
    await source.start()
    try:
        jwks_server.document = {"keys": [OTHER.public_jwk()]}
        for _ in range(100):
            if set((source.current() or auth.KeySet({})).keys) == {OTHER.kid}:
                break
            await asyncio.sleep(0.05)
        assert set(source.current().keys) == {OTHER.kid}
    finally:
        await source.stop()


def test_the_rotation_steps_refuse_what_would_reject_valid_tokens(tmp_path) -> None:
    first = auth.init_keys(tmp_path)
    assert auth.init_keys(tmp_path).kid == first.kid  # made once
    with pytest.raises(auth.RotationRefused):
        auth.switch_signer(tmp_path)  # nothing added
    added = auth.add_key(tmp_path)
    with pytest.raises(auth.RotationRefused):
        auth.add_key(tmp_path)  # one rotation at a time
    with pytest.raises(auth.RotationRefused):
        auth.switch_signer(tmp_path)  # services may not have read the set yet
    assert auth.load_signing_key(tmp_path / auth.SIGNING_KEY_FILE).kid == first.kid
    assert auth.switch_signer(tmp_path, propagation_seconds=0).kid == added.kid
    assert auth.load_signing_key(tmp_path / auth.SIGNING_KEY_FILE).kid == added.kid
    with pytest.raises(auth.RotationRefused):
        auth.retire_key(tmp_path, first.kid)  # its tokens may be valid, or queued, for days
    with pytest.raises(auth.RotationRefused):
        auth.retire_key(tmp_path, added.kid, retire_after_seconds=0)  # it signs now
    auth.retire_key(tmp_path, first.kid, retire_after_seconds=0)
    kids = [k["kid"] for k in json.loads((tmp_path / auth.JWKS_FILE).read_text())["keys"]]
    assert kids == [added.kid]
    assert (tmp_path / auth.SIGNING_KEY_FILE).stat().st_mode & 0o077 == 0  # the private key is the owner's


def test_the_command_line_mints_with_the_local_key_only(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("AUTH_SIGNING_KEY_FILE", str(tmp_path / "none.json"))
    with pytest.raises(SystemExit):
        auth.main(["mint", "--role", "rep", "--id", "r1"])
    assert auth.main(["keys", "init", "--dir", str(tmp_path)]) == 0
    monkeypatch.setenv("AUTH_SIGNING_KEY_FILE", str(tmp_path / auth.SIGNING_KEY_FILE))
    capsys.readouterr()
    assert auth.main(["mint", "--role", "operator", "--id", "ops1"]) == 0
    token = capsys.readouterr().out.strip()
    tokens = auth.TokenVerifier(auth.KeyFile(tmp_path / auth.JWKS_FILE))
    assert tokens.verify(token) == Actor(id="ops1", role=Role.operator)
    with pytest.raises(SystemExit):
        auth.main(["mint", "--role", "service", "--id", "x"])
