"""An outside program's view of the system: NATS as the `system` user and the services' HTTP
APIs, with tokens it was given. Only nats-py, httpx and the programs of examples/: nothing of
the platform or the services is imported here, so what works here works for an integrator
who read the READMEs and the AsyncAPI documents."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.client import Client

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@dataclass
class Outside:
    nc: Client
    nats_url: str
    password: str
    prefix: str
    urls: dict[str, str]  # service → its HTTP address
    sent: int = field(default=0)

    @classmethod
    async def connect(cls, nats_url: str, password: str, prefix: str, urls: dict[str, str]) -> Outside:
        nc = await nats.connect(nats_url, user="system", password=password)
        return cls(nc, nats_url, password, prefix, urls)

    async def close(self) -> None:
        await self.nc.close()

    def subject(self, service: str, *parts: str) -> str:
        return ".".join(p for p in (self.prefix, service, *parts) if p)

    async def request(self, service: str, command: str, payload: dict[str, Any], token: str) -> dict[str, Any]:
        """A command by request/reply; the reply as it came."""
        self.sent += 1
        reply = await self.nc.request(
            self.subject(service, "cmd", command),
            json.dumps(payload).encode(),
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"outside-{self.sent}"},
            timeout=30,
        )
        assert not set(reply.headers or {}) - {"Idempotency-Key", "Correlation-Id"}, reply.headers
        answer: dict[str, Any] = json.loads(reply.data)
        return answer

    async def ok(self, service: str, command: str, payload: dict[str, Any], token: str) -> Any:
        answer = await self.request(service, command, payload, token)
        assert answer["ok"], f"{command}: {answer}"
        return answer["result"]

    async def get(self, service: str, path: str, token: str, **params: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.urls[service], timeout=30) as http:
            answer = await http.get(
                path, params={k.rstrip("_"): v for k, v in params.items()}, headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text}"
        body: dict[str, Any] = answer.json()
        return body

    async def report(self, path: str, token: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.get("reporting", path, token, **params))["items"]
        return items

    def environment(self, token: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "NATS_URL": self.nats_url,
            "NATS_USER": "system",
            "NATS_PASSWORD": self.password,
            "SUBJECT_PREFIX": self.prefix,
            "TOKEN": token,
            **extra,
        }

    async def ingest(self, commands: list[dict[str, Any]], token: str, scratch: Path) -> dict[str, dict[str, Any]]:
        """Send commands through ingest with examples/send_commands.py; what became of each key."""
        path = scratch / f"commands-{self.sent}.jsonl"
        self.sent += 1
        path.write_text("\n".join(json.dumps(c) for c in commands) + "\n", encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLES / "send_commands.py"),
            str(path),
            env=self.environment(token, WAIT_SECONDS="60"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, f"send_commands exited {process.returncode}: {out.decode()} {err.decode()}"
        outcomes: dict[str, dict[str, Any]] = json.loads(out.decode().strip().splitlines()[-1])
        return outcomes
