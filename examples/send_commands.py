"""An outside system sending commands through ingest and reconciling what became of them.

    python examples/send_commands.py commands.jsonl

Each line of the file is one command: {"service": "orders", "command": "place_order",
"key": "crm-4711", "payload": {...}}. The key is the command's Idempotency-Key: the program
subscribes to the results (`<service>.result.<command>`) and rejections
(`<service>.dlq.rejected`) first — results are core NATS, so a program that subscribes late
misses them — then publishes every command to `<service>.ingest.<command>` (JetStream), and
crosses each key off when its result or rejection arrives. It prints one JSON object, key →
{"ok": true, "result": …} or {"ok": false, "status", "error"}, and exits 1 if some command
was not reconciled in time (send those again with the same key: nothing runs twice).

Settings (environment): NATS_URL, NATS_USER (default `system`), NATS_PASSWORD, TOKEN (the
bearer token the commands run as), SUBJECT_PREFIX (a namespace before every subject, empty in
production), WAIT_SECONDS (default 60).

Written with FastStream (NatsBroker) and the pydantic models generated from the services'
schemas (examples/models): payloads are checked against the command's model before they are
sent, answers parsed as CommandResult / CommandRefusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faststream.nats import NatsBroker, NatsMessage
from faststream.security import SASLPlaintext
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models import orders_commands
from models.messages import CommandRefusal, CommandResult


@dataclass(frozen=True)
class Settings:
    nats_url: str
    user: str
    password: str
    token: str
    prefix: str
    wait_seconds: float

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            nats_url=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
            user=os.environ.get("NATS_USER", "system"),
            password=os.environ["NATS_PASSWORD"],
            token=os.environ["TOKEN"],
            prefix=os.environ.get("SUBJECT_PREFIX", ""),
            wait_seconds=float(os.environ.get("WAIT_SECONDS", "60")),
        )

    def subject(self, service: str, *parts: str) -> str:
        return ".".join(p for p in (self.prefix, service, *parts) if p)

    def ingest_stream(self, service: str) -> str:
        name = f"{service.upper()}_INGEST"
        return f"{self.prefix.upper()}_{name}" if self.prefix else name


# The commands whose payload is checked before sending, by their generated model.
CHECKED: dict[tuple[str, str], type[BaseModel]] = {
    ("orders", "place_order"): orders_commands.PlaceOrder,
    ("orders", "deliver_order"): orders_commands.DeliverOrder,
    ("orders", "record_payment"): orders_commands.RecordPayment,
    ("orders", "request_return"): orders_commands.RequestReturn,
}


class Reconciler:
    """The keys sent and what became of each."""

    def __init__(self, keys: list[str]) -> None:
        self.waiting = set(keys)
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.done = asyncio.Event()
        if not self.waiting:
            self.done.set()

    def settle(self, key: str | None, outcome: dict[str, Any]) -> None:
        if key not in self.waiting:
            return  # another program's command, or one already settled
        self.waiting.discard(key)
        self.outcomes[key] = outcome
        if not self.waiting:
            self.done.set()


def read_commands(path: Path) -> list[dict[str, Any]]:
    commands = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for c in commands:
        model = CHECKED.get((c["service"], c["command"]))
        if model is not None:
            c["payload"] = model.model_validate(c["payload"]).model_dump(mode="json", exclude_unset=True)
    return commands


async def send(settings: Settings, commands: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    reconciler = Reconciler([c["key"] for c in commands])
    broker = NatsBroker(
        settings.nats_url,
        logger=None,  # stdout is the program's answer; FastStream's own log would mix in
        security=SASLPlaintext(username=settings.user, password=settings.password),
    )

    async def on_result(body: CommandResult, msg: NatsMessage) -> None:
        reconciler.settle(msg.headers.get("Idempotency-Key"), body.model_dump(mode="json"))

    async def on_rejection(msg: NatsMessage) -> None:
        refusal = CommandRefusal.model_validate_json(msg.headers["Dlq-Error"])
        reconciler.settle(msg.headers.get("Idempotency-Key"), refusal.model_dump(mode="json", exclude_none=True))

    for service in sorted({c["service"] for c in commands}):
        broker.subscriber(settings.subject(service, "result", "*"))(on_result)
        broker.subscriber(settings.subject(service, "dlq", "rejected"))(on_rejection)
    async with broker:
        await broker.start()  # subscribed before anything is sent
        for c in commands:
            await broker.publish(
                c["payload"],
                settings.subject(c["service"], "ingest", c["command"]),
                headers={"Authorization": f"Bearer {settings.token}", "Idempotency-Key": c["key"]},
                stream=settings.ingest_stream(c["service"]),
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reconciler.done.wait(), settings.wait_seconds)
    return {**reconciler.outcomes, **{key: {"ok": None, "pending": True} for key in sorted(reconciler.waiting)}}


def main() -> int:
    outcomes = asyncio.run(send(Settings.from_env(), read_commands(Path(sys.argv[1]))))
    print(json.dumps(outcomes, ensure_ascii=False, sort_keys=True))
    return 1 if any(o.get("pending") for o in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
