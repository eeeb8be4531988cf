"""Tell report consumers what changed: core NATS `reporting.changed.<report>` after each commit.

Core NATS is at-most-once by nature; a consumer that must not miss a change re-reads the report
on reconnect. A notice is only sent after the change it announces is committed.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from pydantic import BaseModel, Field

from salesplatform.projections import Change

log = structlog.get_logger(__name__)

# Keys per message: keeps each message far below the NATS payload limit.
KEYS_PER_MESSAGE = 1000


class ChangeNotice(BaseModel):
    """Body of `reporting.changed.<report>` (core NATS), sent after the change is committed."""

    report: str = Field(description="the report, also the subject's last token")
    projection: str = Field(description="the read model that changed, or rebuild-all")
    changes: list[dict[str, Any]] = Field(
        description="keys that changed: period (YYYY-MM-DD) or month (YYYY-MM), rep_id, district_id, "
        "area_id, customer_id, category, reason, promotion_id, level, subject_id, as fit the report; "
        "{rebuilt: true} after a rebuild switched (re-read everything)"
    )


def group_by_report(changes: list[Change]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, tuple[tuple[str, Any], ...]]] = set()
    for change in changes:
        report = change.get("report")
        if not report:
            continue
        key = {k: v for k, v in change.items() if k != "report"}
        marker = (report, tuple(sorted(key.items())))
        if marker in seen:
            continue
        seen.add(marker)
        out.setdefault(report, []).append(key)
    return out


async def publish_changes(runtime: Any, projection: str, changes: list[Change]) -> None:
    for report, keys in group_by_report(changes).items():
        subject = runtime.topology.subject("changed", report)
        for i in range(0, len(keys), KEYS_PER_MESSAGE):
            body = {"report": report, "projection": projection, "changes": keys[i : i + KEYS_PER_MESSAGE]}
            try:
                await runtime.nc.publish(subject, orjson.dumps(body))
            except Exception as exc:  # noqa: BLE001 - the change is committed; only the notice is lost
                log.warning("change_notice_not_sent", report=report, error=repr(exc))
