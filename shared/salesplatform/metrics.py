"""What operators scrape (`GET /metrics`, Prometheus text format 0.0.4): how far the outbox,
the consumers and the projections are behind, and what the service has done since it started.

Gauges are read when scraped (one statement on the database, one JetStream request per
durable consumer); counters are kept in the process and start at zero with it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
from nats.js.api import ConsumerInfo

if TYPE_CHECKING:
    from salesplatform.service import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> str:
    """One metric family: its HELP and TYPE lines, then a line per sample."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        number = repr(float(value)) if value != int(value) else str(int(value))
        lines.append(f"{name}{{{label_text}}} {number}" if label_text else f"{name} {number}")
    return "\n".join(lines) + "\n"


_STATE = """
SELECT (SELECT count(*) FROM public.outbox) AS outbox,
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.events_position_seq) AS head,
       (SELECT count(*) FROM public.projection_failures) AS failures
"""

_PROJECTIONS = """
SELECT p.name, g.generation, g.position, g.events_applied
  FROM public.projections p
  JOIN public.projection_generations g ON g.name = p.name AND g.generation = p.generation
 ORDER BY p.name
"""


async def exposition(runtime: Runtime) -> str:
    async with runtime.pool.acquire() as conn:
        state = await conn.fetchrow(_STATE)
        # Inline projections change with the events themselves: never behind, no checkpoint.
        inline = {p.name for p in runtime.bus.inline_projections}
        projections = [r for r in await conn.fetch(_PROJECTIONS) if r["name"] not in inline]
    head = int(state["head"])
    service = runtime.definition.name
    consumers = await _consumers(runtime)
    out = [
        family(
            "sales_outbox_pending",
            "gauge",
            "Committed events not yet confirmed by JetStream.",
            [({"service": service}, state["outbox"])],
        ),
        family(
            "sales_log_head_position",
            "gauge",
            "The last position handed out in the event log.",
            [({"service": service}, head)],
        ),
        family(
            "sales_projection_positions_behind",
            "gauge",
            "Log positions between a catch-up projection's checkpoint and the head (at most the events to apply).",
            [({"service": service, "projection": r["name"]}, max(0, head - r["position"])) for r in projections],
        ),
        family(
            "sales_projection_events_applied",
            "gauge",
            "Events applied by a catch-up projection's active generation.",
            [
                ({"service": service, "projection": r["name"], "generation": str(r["generation"])}, r["events_applied"])
                for r in projections
            ],
        ),
        family(
            "sales_projection_failures",
            "gauge",
            "Events a projection could not apply (kept and dead-lettered).",
            [({"service": service}, state["failures"])],
        ),
        family(
            "sales_consumer_pending",
            "gauge",
            "Messages of a durable consumer's stream not yet delivered.",
            [({"service": service, "durable": durable}, info.num_pending or 0) for durable, info in consumers],
        ),
        family(
            "sales_consumer_ack_pending",
            "gauge",
            "Messages delivered to a durable consumer and not yet acked.",
            [({"service": service, "durable": durable}, info.num_ack_pending or 0) for durable, info in consumers],
        ),
        family(
            "sales_commands_total",
            "counter",
            "Commands run, by command and status (200: accepted).",
            [
                ({"service": service, "command": name, "status": str(status)}, n)
                for (name, status), n in sorted(runtime.bus.counts.items())
            ],
        ),
        family(
            "sales_events_published_total",
            "counter",
            "Events the outbox relay published.",
            [({"service": service}, runtime.relay.published)],
        ),
        family(
            "sales_ingest_total",
            "counter",
            "Asynchronous commands taken from the ingest stream, by outcome.",
            [
                ({"service": service, "outcome": "accepted"}, sum(loop.accepted for loop in runtime.ingest_loops)),
                ({"service": service, "outcome": "rejected"}, sum(loop.rejected for loop in runtime.ingest_loops)),
            ],
        ),
        family(
            "sales_dead_letters_total",
            "counter",
            "Messages sent to the dead-letter stream, by reason.",
            [({"service": service, "reason": reason}, n) for reason, n in sorted(runtime.dead_letters.sent.items())],
        ),
    ]
    return "".join(out)


async def _consumers(runtime: Runtime) -> list[tuple[str, ConsumerInfo]]:
    """The state of the service's durable consumers (ingest, then other services' events);
    one not made yet is left out."""
    found = []
    # Each through its own JetStream context: another service's stream is reached through the
    # consumer API that service's account exports.
    for loop in [runtime.ingest, *runtime.consumers]:
        with contextlib.suppress(nats.js.errors.NotFoundError, nats.errors.TimeoutError):
            found.append((loop.durable, await loop.js.consumer_info(loop.stream, loop.durable, timeout=2)))
    return found
