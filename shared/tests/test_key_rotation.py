"""The signing key is rotated while services run: add a key, switch the signer, retire the old
key. Services read the key set again without a restart, and no token valid when it was sent is
refused on the way; a retired key's tokens are refused from then on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import httpx
import orjson
from tally import definition
from waiting import wait_for

from salesplatform import auth
from salesplatform.devstack.pytest_plugin import nats_credentials_for_tests
from salesplatform.events import Actor, Role
from salesplatform.service import Runtime, http_app

REP = Actor(id="r1", role=Role.rep, district="d1")


class Clients:
    """Sends commands to every running service, over HTTP and NATS, with a given token."""

    def __init__(self, runtimes: list[Runtime], https: list[httpx.AsyncClient], outside) -> None:
        self.runtimes, self.https, self.outside = runtimes, https, outside
        self.sent = 0

    async def statuses(self, token: str) -> list[int]:
        out = []
        for rt, http in zip(self.runtimes, self.https, strict=True):
            self.sent += 2
            body = {"sheet_id": str(uuid.uuid4()), "title": "M"}
            r = await http.post("/commands/open_sheet", json=body, headers={"Authorization": f"Bearer {token}"})
            out.append(r.status_code)
            reply = await self.outside.request(
                rt.topology.subject("cmd", "open_sheet"),
                orjson.dumps({"sheet_id": str(uuid.uuid4()), "title": "M"}),
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            out.append(orjson.loads(reply.data).get("status", 200))
        return out


def _kids(directory) -> list[str]:
    return [k["kid"] for k in json.loads((directory / auth.JWKS_FILE).read_text())["keys"]]


async def test_the_signing_key_is_rotated_on_running_services(service_settings, make_database, outside, tmp_path):
    keys = tmp_path / "auth"
    first = auth.init_keys(keys)
    jwks_file = str(keys / auth.JWKS_FILE)
    tally_settings = service_settings.model_copy(update={"jwks": None, "jwks_file": jwks_file})
    board_settings = tally_settings.model_copy(
        update={"database_url": await make_database("board"), **nats_credentials_for_tests("board")}
    )
    async with (
        Runtime(definition("tally"), tally_settings) as tally,
        Runtime(definition("board"), board_settings) as board,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(tally)), base_url="http://tally") as t_http,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(board)), base_url="http://board") as b_http,
    ):
        clients = Clients([tally, board], [t_http, b_http], outside)
        # A token of each key that has signed, sent again and again all through the rotation
        # (a client keeps its token until it expires), and one from whichever key signs now.
        held: dict[str, str] = {first.kid: auth.mint(REP, first)}
        refused: list[tuple[str, list[int]]] = []
        stop = asyncio.Event()

        async def keep_sending() -> None:
            while not stop.is_set():
                signer = auth.load_signing_key(keys / auth.SIGNING_KEY_FILE)
                held.setdefault(signer.kid, auth.mint(REP, signer))
                for kid, token in held.items():
                    statuses = await clients.statuses(token)
                    if set(statuses) != {200}:
                        refused.append((kid, statuses))
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(keep_sending())
        try:
            await asyncio.sleep(0.5)
            added = auth.add_key(keys)  # step 1: the new key joins the set
            next_key = auth.load_signing_key(keys / auth.NEXT_SIGNING_KEY_FILE)

            async def known_everywhere() -> bool:
                return set(await clients.statuses(auth.mint(REP, next_key))) == {200}

            await wait_for(known_everywhere, timeout=10)  # every service has read the set again
            auth.switch_signer(keys, propagation_seconds=0)  # step 2: tokens are signed with it
            await asyncio.sleep(1.0)
            try:
                auth.retire_key(keys, first.kid)
            except auth.RotationRefused:
                pass  # the old key's tokens may still be valid: not yet
            else:
                raise AssertionError("the old key was retired while its tokens were valid")
            assert _kids(keys) == [first.kid, added.kid]
            stop.set()
            await sender
            assert not refused, refused

            auth.retire_key(keys, first.kid, retire_after_seconds=0)  # step 3, once its tokens are done
            old_token = held[first.kid]

            async def old_refused() -> bool:
                return set(await clients.statuses(old_token)) == {401}

            await wait_for(old_refused, timeout=10)
            assert set(await clients.statuses(auth.mint(REP, added))) == {200}
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await sender
        assert clients.sent > 20  # the rotation ran while commands kept arriving
