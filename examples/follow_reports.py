"""An outside system keeping copies of report rows: it follows `reporting.changed.*` and fetches
the rows each notice names.

    python examples/follow_reports.py

A notice says which keys of a report changed after a committed batch, e.g. report `sales` with
{"period": "2026-11-02", "rep_id": "r1", "district_id": "d1", "area_id": "a1"}; this program
asks the report for exactly those rows (GET /reports/<report> filtered by the key, that day
only) and prints one JSON line per key: {"report", "key", "rows"}. Notices are core NATS, at
most once: after a reconnect, or a notice {"rebuilt": true}, a program re-reads the reports it
keeps. It prints {"ready": true} once subscribed.

Settings (environment): NATS_URL, NATS_USER (default `system`), NATS_PASSWORD, TOKEN (a bearer
token that may read the reports), REPORTING_URL (the reporting service's HTTP address),
SUBJECT_PREFIX (empty in production), REPORTS (comma list, default
sales,receivables,credit,collections), STOP_AFTER (stop after printing this many keys; default
never).

Written with FastStream (NatsBroker) and the ChangeNotice model generated from the reporting
service's AsyncAPI document (examples/models).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
from faststream.nats import NatsBroker
from faststream.security import SASLPlaintext

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models.messages import ChangeNotice

# report → (path, fixed parameters); key fields become filters below.
REPORTS: dict[str, tuple[str, dict[str, str]]] = {
    "sales": ("/reports/sales", {"period": "day", "group_by": "rep,customer"}),
    "receivables": ("/reports/receivables", {"group_by": "customer"}),
    "credit": ("/reports/credit", {"group_by": "customer"}),
    "collections": ("/reports/collections", {"group_by": "customer"}),
    "customer_base": ("/reports/customer-base", {"group_by": "rep"}),
}
FILTERS = ("rep_id", "district_id", "area_id", "customer_id")


def query_of(report: str, key: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """The request that reads the rows of one changed key."""
    if report not in REPORTS or key.get("rebuilt"):
        return None
    path, params = REPORTS[report]
    query = dict(params)
    if "period" in key:
        query["from"] = query["to"] = key["period"]
    query.update({f: key[f] for f in FILTERS if key.get(f)})
    if report in ("sales",) and "customer_id" in query:
        query.pop("customer_id")
    return path, query


async def follow() -> None:
    prefix = os.environ.get("SUBJECT_PREFIX", "")
    wanted = [r for r in os.environ.get("REPORTS", "sales,receivables,credit,collections").split(",") if r]
    stop_after = int(os.environ.get("STOP_AFTER", "0"))
    token = os.environ["TOKEN"]
    broker = NatsBroker(
        os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
        logger=None,  # stdout is the program's answer; FastStream's own log would mix in
        security=SASLPlaintext(username=os.environ.get("NATS_USER", "system"), password=os.environ["NATS_PASSWORD"]),
    )
    printed = 0
    finished = asyncio.Event()
    http = httpx.AsyncClient(
        base_url=os.environ["REPORTING_URL"], headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    async def on_notice(notice: ChangeNotice) -> None:
        nonlocal printed
        for key in notice.changes:
            request = query_of(notice.report, key)
            if request is None:
                continue
            path, params = request
            answer = await http.get(path, params=params)
            answer.raise_for_status()
            print(json.dumps({"report": notice.report, "key": key, "rows": answer.json()["items"]}), flush=True)
            printed += 1
            if stop_after and printed >= stop_after:
                finished.set()

    for report in wanted:
        broker.subscriber(".".join(p for p in (prefix, "reporting", "changed", report) if p))(on_notice)
    async with broker, http:
        await broker.start()
        print(json.dumps({"ready": True}), flush=True)
        await finished.wait()


if __name__ == "__main__":
    asyncio.run(follow())
