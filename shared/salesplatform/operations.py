"""The operators' HTTP API of every service (`/admin/*`, an operator's token only): the state
of the service at a glance, and its dead letters (`salesplatform.dead_letters`)."""

from __future__ import annotations

import contextlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi import Request as HttpRequest
from pydantic import BaseModel, ConfigDict, Field

from salesplatform import metrics
from salesplatform.dead_letters import DeadLetterDesk, Selection
from salesplatform.errors import ServiceError
from salesplatform.projections import rebuild_states

if TYPE_CHECKING:
    from salesplatform.service import Runtime


class DeadLetterSelection(BaseModel):
    """Which dead letters a replay or purge takes: all the filters given must match; `seqs`
    names them one by one instead. A purge needs at least one filter, or `all`."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = None
    command: str | None = Field(default=None, description="a command, or a projection")
    older_than_hours: float | None = Field(default=None, ge=0)
    newer_than_hours: float | None = Field(default=None, ge=0)
    seqs: list[int] = Field(default_factory=list, max_length=1000)
    limit: int = Field(default=500, ge=1, le=5000)
    all: bool = False

    def selection(self) -> Selection:
        return Selection(
            reason=self.reason,
            command=self.command,
            older_than_hours=self.older_than_hours,
            newer_than_hours=self.newer_than_hours,
            limit=self.limit,
            seqs=self.seqs,
        )

    @property
    def narrowed(self) -> bool:
        return any(
            v is not None for v in (self.reason, self.command, self.older_than_hours, self.newer_than_hours)
        ) or bool(self.seqs)


class SelectionEmpty(ServiceError):
    status = 422
    code = "selection_empty"


def version_of(service: str) -> str:
    """The installed version of the service's package (else of the platform)."""
    for package in (f"sales-{service}", "salesplatform"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(package)
    return "unknown"


async def status(runtime: Runtime) -> dict[str, Any]:
    """What `salesctl status` shows of one service: ready, version, the log head, the outbox
    backlog, each consumer's pending and unacked messages, each catch-up projection's lag and
    latest rebuild, and the dead letters by reason."""
    state = await metrics.read_state(runtime)
    async with runtime.pool.acquire() as conn:
        rebuilds = await rebuild_states(conn)
    return {
        "service": runtime.definition.name,
        "version": version_of(runtime.definition.name),
        "ready": await runtime.ready(),
        "log_head": state.head,
        "outbox_pending": state.outbox,
        "projection_failures": state.failures,
        "consumers": [
            {
                "durable": durable,
                "stream": info.stream_name,
                "pending": info.num_pending or 0,
                "ack_pending": info.num_ack_pending or 0,
                "redelivered": info.num_redelivered or 0,
            }
            for durable, info in state.consumers
        ],
        "projections": [
            {
                "name": p["name"],
                "generation": p["generation"],
                "position": p["position"],
                "behind": max(0, state.head - p["position"]),
                "events_applied": p["events_applied"],
                "rebuild": rebuilds.get(p["name"]),
            }
            for p in state.projections
        ],
        "dead_letters": await DeadLetterDesk(runtime).counts(),
    }


def router(runtime: Runtime) -> APIRouter:
    from salesplatform.service import operator_actor

    api = APIRouter(prefix="/admin", tags=["operations"])
    desk = DeadLetterDesk(runtime)

    @api.get("/status")
    async def service_status(request: HttpRequest) -> Any:
        """The service at a glance (what `salesctl status` shows)."""
        operator_actor(request)
        return await status(runtime)

    @api.get("/dead-letters")
    async def dead_letter_list(
        request: HttpRequest,
        limit: int = 50,
        reason: str | None = None,
        command: str | None = None,
        older_than_hours: float | None = None,
        newer_than_hours: float | None = None,
    ) -> Any:
        """The latest dead letters (`<service>.dlq.<reason>`), newest first, of a reason, a
        command (or projection) and an age in hours if given: reason, error, where it came from,
        its sender, failures and payload (a sealed one opened while its owner's keys exist)."""
        operator_actor(request)
        selection = Selection(reason, command, older_than_hours, newer_than_hours, max(1, min(limit, 500)))
        return {"dead_letters": [await desk.shown(d) for d in await desk.find(selection)]}

    @api.get("/dead-letters/{seq}")
    async def dead_letter_show(seq: int, request: HttpRequest) -> Any:
        operator_actor(request)
        return await desk.shown(await desk.get(seq))

    @api.post("/dead-letters/{seq}/replay")
    async def dead_letter_replay(seq: int, request: HttpRequest, keep: bool = False) -> Any:
        """Send one dead letter again as the operator (see `salesplatform.dead_letters`); it is
        removed once it goes through, unless `keep`."""
        operator = operator_actor(request)
        return await desk.replay(seq, operator, keep=keep)

    @api.post("/dead-letters/replay")
    async def dead_letters_replay(body: DeadLetterSelection, request: HttpRequest, keep: bool = False) -> Any:
        """Replay every dead letter the selection names, oldest first."""
        operator = operator_actor(request)
        return {"replayed": await desk.replay_many(body.selection(), operator, keep=keep)}

    @api.delete("/dead-letters/{seq}")
    async def dead_letter_purge(seq: int, request: HttpRequest) -> Any:
        operator_actor(request)
        if not await desk.purge(seq):
            await desk.get(seq)  # 404
        return {"purged": [seq]}

    @api.post("/dead-letters/purge")
    async def dead_letters_purge(body: DeadLetterSelection, request: HttpRequest) -> Any:
        """Remove the dead letters the selection names (at least one filter, or `all`)."""
        operator_actor(request)
        if not (body.narrowed or body.all):
            raise SelectionEmpty("name what to purge (a reason, command, age or seqs), or all")
        return {"purged": await desk.purge_many(body.selection())}

    return api
