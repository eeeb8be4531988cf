"""Sends a plan to a running system, as an outside program would.

Only the public interfaces: HTTP `POST /commands/<name>` and the GET queries, NATS request/reply
`<service>.cmd.<name>` and JetStream ingest `<service>.ingest.<name>` (with its results on
`<service>.result.<name>` and rejections on `<service>.dlq.rejected`), each with a bearer token
minted for the person or system acting. The services keep their own clocks, so:

- past days go in through the commands that take explicit dates: the order history import
  (`import_history`: orders with `placed_at`, deliveries with `delivered_at` — a few past their
  24 hours — and payments with `received_on`), and complaints with their `received_at`;
- the last day of the plan is today: route visits with all eight steps (a visit can be checked
  in only on its own business day, so past days' visits reach the system as the orders they
  produced), phone orders, approvals, dispatch and delivery, payments, returns, complaints,
  surveys, key-account reports, coaching, spot checks and follow-ups. Commands without a date
  field that stand for an earlier day (returns, reports, coaching, …) are sent today and name
  the intended business day in their notes.

Bulk work goes through ingest, where the service takes a fetched batch in one transaction: the
customer archive (registration, verification, approval, classification, credit), phone orders
and surveys. Complaints use request/reply; the rest, HTTP.

Every command carries an idempotency key derived from the plan, so running the same plan twice
on the same day adds nothing. Rejections (403/404/409/422) are counted per status and code, not
raised: a real bug shows up as many of one code in the summary. Cross-service effects are
asynchronous; a command refused because another service's event has not arrived yet (e.g.
`customer_not_on_rep_list` right after the customer was registered) is retried for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol, Self

import httpx
import orjson

from bench.simulation.office_driver import OfficeDriver
from bench.simulation.organisation import (
    STANDARD_PICTURES,
    TZ,
    Complaint,
    Customer,
    Delivery,
    Order,
    Person,
    Plan,
    Return,
    Visit,
)
from bench.simulation.pictures import shelf_png
from salesplatform.auth import SigningKey, mint
from salesplatform.events import Actor

SERVICES = ("customer", "visit", "orders", "reporting")
RETRYABLE_STATUS = {502, 503, 504}
IMPORT_CHUNK = 2000
ID_NAMESPACE = uuid.UUID("1e5c7a2b-3d4f-4a6b-8c9d-0e1f2a3b4c5d")

# Codes that mean "the event this depends on has not reached that service yet".
WAITING_FOR_EVENTS = {
    "customer_not_on_rep_list",
    "unknown_customer",
    "unknown_sku",
    "unknown_subject",
    "unknown_rep",
    "no_previous_order",
    "order_not_for_customer",
    "target_not_found",
}


class Progress(Protocol):
    def phase(self, name: str) -> None: ...
    def add_total(self, n: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...


class _NoProgress:
    def phase(self, name: str) -> None:
        pass

    def add_total(self, n: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


@dataclass
class Reply:
    status: int
    body: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def code(self) -> str:
        if self.ok:
            return "ok"
        error = (self.body or {}).get("error") if isinstance(self.body, dict) else None
        if not isinstance(error, dict):
            return f"http_{self.status}"
        code = str(error.get("code") or f"http_{self.status}")
        details = error.get("details")
        if self.status == 422 and isinstance(details, list) and details:
            first = details[0]
            return f"{code}:{first.get('field')}:{first.get('code')}"
        return code

    @property
    def message(self) -> str:
        error = (self.body or {}).get("error") if isinstance(self.body, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or "")
        return str(self.body)[:200]

    @property
    def result(self) -> dict[str, Any]:
        return self.body if self.ok and isinstance(self.body, dict) else {}


@dataclass
class Summary:
    plan_counts: dict[str, int]
    seconds: float = 0.0
    ok: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str, int, str]] = field(default_factory=Counter)
    samples: dict[tuple[str, str, int, str], str] = field(default_factory=dict)
    retried: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    imported: Counter[str] = field(default_factory=Counter)
    import_rejections: Counter[str] = field(default_factory=Counter)
    transports: Counter[str] = field(default_factory=Counter)
    phases: list[tuple[str, float]] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.ok.values()) + sum(self.rejected.values())

    def rejected_by_code(self) -> Counter[tuple[int, str]]:
        out: Counter[tuple[int, str]] = Counter()
        for (_, _, status, code), n in self.rejected.items():
            out[(status, code)] += n
        return out

    def render(self) -> str:
        lines = [
            f"Sent {self.sent} commands in {self.seconds:.1f}s "
            f"({self.sent / max(self.seconds, 0.001):.0f}/s): {sum(self.ok.values())} accepted, "
            f"{sum(self.rejected.values())} rejected."
        ]
        lines.append("  by transport: " + ", ".join(f"{k} {v}" for k, v in sorted(self.transports.items())))
        lines.append("  time per phase: " + ", ".join(f"{name} {sec:.1f}s" for name, sec in self.phases))
        if self.imported:
            lines.append("  history import: " + ", ".join(f"{k} {v}" for k, v in sorted(self.imported.items())))
        for message, n in self.import_rejections.most_common(8):
            lines.append(f"    rejected record ×{n}: {message}")
        if self.rejected:
            lines.append("  rejected, by status and code:")
            for (service, command, status, code), n in sorted(self.rejected.items(), key=lambda kv: -kv[1]):
                sample = self.samples.get((service, command, status, code), "")
                lines.append(f"    {status} {code:<32} ×{n:<5} {service}.{command}: {sample[:110]}")
        if self.retried:
            waited = sum(self.retried.values())
            lines.append(
                f"  retried (events still on their way to another service, or a write conflict): {waited} "
                + ", ".join(f"{s}.{c} {code} ×{n}" for (s, c, code), n in self.retried.most_common(5))
            )
        for reason, n in self.skipped.most_common():
            lines.append(f"  not sent ×{n}: {reason}")
        return "\n".join(lines)


class Driver:
    """Drives one plan into one system. Give it HTTP clients per service (e.g. on an ASGI
    transport, in tests) or base URLs; NATS is optional (without it ingest and request/reply
    fall back to HTTP)."""

    def __init__(
        self,
        plan: Plan,
        *,
        signing_key: SigningKey,
        clients: Mapping[str, httpx.AsyncClient] | None = None,
        base_urls: Mapping[str, str] | None = None,
        nats_url: str | None = None,
        nats_login: Mapping[str, str] | None = None,
        nats_namespace: str = "",
        concurrency: int = 32,
        progress: Progress | None = None,
        patience: float = 60.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if clients is None and base_urls is None:
            raise ValueError("give clients or base_urls")
        self.plan = plan
        self.org = plan.organisation
        self.signing_key = signing_key
        self.nats_login = dict(nats_login or {})
        self._given_clients = dict(clients or {})
        self._base_urls = dict(base_urls or {})
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.nats_url = nats_url
        self.namespace = nats_namespace
        self.concurrency = concurrency
        self.limit = asyncio.Semaphore(concurrency)
        self.progress: Progress = progress or _NoProgress()
        self.patience = patience
        self.clock = clock or (lambda: datetime.now(TZ))
        self.summary = Summary(plan.counts())
        self._tokens: dict[Actor, str] = {}
        self._stack = contextlib.AsyncExitStack()
        self.nc: Any = None
        self.js: Any = None
        self._ingest_waiting: dict[str, asyncio.Future[Reply]] = {}
        self._ingest_subscribed: set[str] = set()
        self.order_ids: dict[str, str] = {}  # plan order key → order id in the system
        office = self.org.office
        self.office = OfficeDriver(self, office, plan.office_day, plan.end) if office is not None else None
        self._phase_name: str | None = None
        self._phase_started = 0.0

    # -- connections ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        for service in SERVICES:
            if service in self._given_clients:
                self.clients[service] = self._given_clients[service]
            elif service in self._base_urls:
                self.clients[service] = await self._stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=self._base_urls[service],
                        timeout=httpx.Timeout(120.0),
                        limits=httpx.Limits(
                            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                        ),
                    )
                )
        if self.nats_url:
            import nats

            try:
                self.nc = await nats.connect(
                    self.nats_url,
                    name="sales-simulation",
                    connect_timeout=5,
                    max_reconnect_attempts=3,
                    **self.nats_login,
                )
                self.js = self.nc.jetstream()
            except Exception as exc:  # noqa: BLE001 - NATS is optional: HTTP carries everything
                self.summary.skipped[f"NATS unreachable ({type(exc).__name__}); everything went over HTTP"] += 1
                self.nc = None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
        await self._stack.aclose()

    def subject(self, service: str, *parts: str) -> str:
        base = ".".join((service, *parts))
        return f"{self.namespace}.{base}" if self.namespace else base

    def token(self, who: Person | Actor) -> str:
        actor = who.actor() if isinstance(who, Person) else who
        if actor not in self._tokens:
            self._tokens[actor] = mint(actor, self.signing_key, ttl_seconds=24 * 3600)
        return self._tokens[actor]

    def id_for(self, kind: str, key: str) -> str:
        return str(uuid.uuid5(ID_NAMESPACE, f"{kind}:{key}"))

    # -- sending --------------------------------------------------------------------------------

    def _count(self, service: str, name: str, reply: Reply, transport: str) -> None:
        self.summary.transports[transport] += 1
        if reply.ok:
            self.summary.ok[(service, name)] += 1
        else:
            key = (service, name, reply.status, reply.code)
            self.summary.rejected[key] += 1
            self.summary.samples.setdefault(key, reply.message)

    async def _post(
        self, service: str, name: str, payload: dict[str, Any], who: Person | Actor, key: str | None
    ) -> Reply:
        headers = {"Authorization": f"Bearer {self.token(who)}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        for attempt in range(6):
            try:
                async with self.limit:
                    r = await self.clients[service].post(
                        f"/commands/{name}",
                        content=orjson.dumps(payload),
                        headers={**headers, "Content-Type": "application/json"},
                    )
            except (httpx.TransportError, OSError) as exc:
                if attempt == 5:
                    return Reply(599, {"error": {"code": "transport_error", "message": repr(exc)}})
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            if r.status_code in RETRYABLE_STATUS and attempt < 5:
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            try:
                body = r.json()
            except ValueError:
                body = {"error": {"code": f"http_{r.status_code}", "message": r.text[:300]}}
            return Reply(r.status_code, body)
        raise AssertionError("unreachable")

    async def _request(
        self, service: str, name: str, payload: dict[str, Any], who: Person | Actor, key: str | None
    ) -> Reply:
        """NATS request/reply on `<service>.cmd.<name>`."""
        headers = {"Authorization": f"Bearer {self.token(who)}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        async with self.limit:
            msg = await self.nc.request(
                self.subject(service, "cmd", name), orjson.dumps(payload), headers=headers, timeout=30
            )
        body = orjson.loads(msg.data)
        if body.get("ok"):
            return Reply(200, body.get("result"))
        return Reply(int(body.get("status", 500)), {"error": body.get("error")})

    async def send(
        self,
        service: str,
        name: str,
        payload: dict[str, Any],
        who: Person | Actor,
        *,
        key: str | None,
        wait_for: Iterable[str] = (),
        via: str = "http",
    ) -> Reply:
        """One command; retried while it is refused for a reason in `wait_for` (another
        service's events still on their way), up to the driver's patience."""
        waiting = set(wait_for)
        deadline = time.monotonic() + self.patience
        pause = 0.2
        conflicts = 0
        transport = via if via == "http" or self.nc is not None else "http"
        while True:
            if transport == "nats":
                try:
                    reply = await self._request(service, name, payload, who, key)
                except Exception:  # noqa: BLE001 - no responder or timeout: HTTP does the same job
                    transport = "http"
                    continue
            else:
                reply = await self._post(service, name, payload, who, key)
            # A conflict left after the service's own retries is transient too: try again a few times.
            conflict = reply.code == "concurrency_conflict" and conflicts < 3
            if reply.ok or (reply.code not in waiting and not conflict) or time.monotonic() > deadline:
                self._count(service, name, reply, "nats request/reply" if transport == "nats" else "http")
                return reply
            conflicts += conflict
            self.summary.retried[(service, name, reply.code)] += 1
            await asyncio.sleep(pause)
            pause = min(2.0, pause * 1.5)

    async def get(self, service: str, path: str, who: Person | Actor, **params: Any) -> Reply:
        async with self.limit:
            try:
                r = await self.clients[service].get(
                    path,
                    params={k: v for k, v in params.items() if v is not None},
                    headers={"Authorization": f"Bearer {self.token(who)}"},
                )
            except (httpx.TransportError, OSError) as exc:
                return Reply(599, {"error": {"code": "transport_error", "message": repr(exc)}})
        try:
            return Reply(r.status_code, r.json())
        except ValueError:
            return Reply(r.status_code, None)

    async def upload(
        self, service: str, path: str, data: bytes, content_type: str, who: Person, **params: Any
    ) -> Reply:
        """A file as the request body (a visit photo)."""
        headers = {"Authorization": f"Bearer {self.token(who)}", "Content-Type": content_type}
        reply = Reply(599, {"error": {"code": "transport_error", "message": "not sent"}})
        for attempt in range(4):
            try:
                async with self.limit:
                    r = await self.clients[service].post(path, content=data, params=params, headers=headers)
            except (httpx.TransportError, OSError) as exc:
                reply = Reply(599, {"error": {"code": "transport_error", "message": repr(exc)}})
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            try:
                reply = Reply(r.status_code, r.json())
            except ValueError:
                reply = Reply(r.status_code, {"error": {"code": f"http_{r.status_code}", "message": r.text[:300]}})
            if r.status_code not in RETRYABLE_STATUS:
                break
            await asyncio.sleep(0.5 * 2**attempt)
        self._count(service, "upload_photo", reply, "http")
        return reply

    # -- ingest (JetStream) ----------------------------------------------------------------------

    async def _subscribe_results(self, service: str) -> None:
        if service in self._ingest_subscribed:
            return
        self._ingest_subscribed.add(service)

        async def on_result(msg: Any) -> None:
            key = (msg.headers or {}).get("Idempotency-Key")
            future = self._ingest_waiting.pop(key, None) if key else None
            if future is not None and not future.done():
                body = orjson.loads(msg.data)
                future.set_result(
                    Reply(200, body.get("result"))
                    if body.get("ok")
                    else Reply(int(body.get("status", 500)), {"error": body.get("error")})
                )

        async def on_rejected(msg: Any) -> None:
            headers = msg.headers or {}
            future = self._ingest_waiting.pop(headers.get("Idempotency-Key", ""), None)
            if future is not None and not future.done():
                try:
                    body = orjson.loads(headers.get("Dlq-Error", "{}"))
                except orjson.JSONDecodeError:
                    body = {"status": 500, "error": {"code": "dead_lettered", "message": headers.get("Dlq-Error")}}
                future.set_result(Reply(int(body.get("status", 500)), {"error": body.get("error")}))

        await self.nc.subscribe(self.subject(service, "result", "*"), cb=on_result)
        await self.nc.subscribe(self.subject(service, "dlq", "rejected"), cb=on_rejected)
        await self.nc.flush()

    async def ingest(
        self,
        service: str,
        name: str,
        items: Sequence[tuple[dict[str, Any], Person | Actor, str]],
        *,
        timeout: float = 180.0,
        advance: bool = False,
    ) -> list[Reply]:
        """Publish commands to `<service>.ingest.<name>` and wait for each one's result or
        rejection (the service runs a fetched batch in one transaction, which is what bulk work
        wants); without NATS, or without the ingest stream, they go over HTTP instead."""
        if self.js is None:

            async def one(p: dict[str, Any], w: Person | Actor, k: str) -> Reply:
                reply = await self.send(service, name, p, w, key=k)
                if advance:
                    self.progress.advance()
                return reply

            return list(await asyncio.gather(*(one(p, w, k) for p, w, k in items)))
        await self._subscribe_results(service)
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Reply]] = [loop.create_future() for _ in items]
        fallback: set[int] = set()

        async def publish(i: int) -> None:
            payload, who, key = items[i]
            self._ingest_waiting[key] = futures[i]
            try:
                # The Idempotency-Key makes a redelivery (or a rerun of the plan) append nothing twice.
                async with self.limit:
                    await self.js.publish(
                        self.subject(service, "ingest", name),
                        orjson.dumps(payload),
                        headers={"Authorization": f"Bearer {self.token(who)}", "Idempotency-Key": key},
                    )
            except Exception:  # noqa: BLE001 - no ingest stream: send it over HTTP instead
                self._ingest_waiting.pop(key, None)
                fallback.add(i)

        await asyncio.gather(*(publish(i) for i in range(len(items))))
        deadline = loop.time() + timeout

        async def result(i: int) -> Reply:
            payload, who, key = items[i]
            if i in fallback:
                reply = await self.send(service, name, payload, who, key=key)
            else:
                try:
                    reply = await asyncio.wait_for(futures[i], max(0.1, deadline - loop.time()))
                except TimeoutError:
                    self._ingest_waiting.pop(key, None)
                    reply = Reply(
                        504, {"error": {"code": "no_ingest_result", "message": f"no result within {timeout:.0f}s"}}
                    )
                self._count(service, name, reply, "nats ingest")
            if advance:
                self.progress.advance()
            return reply

        return list(await asyncio.gather(*(result(i) for i in range(len(items)))))

    # -- helpers --------------------------------------------------------------------------------

    async def each(self, items: Iterable[Any], work: Callable[[Any], Awaitable[None]]) -> None:
        async def one(item: Any) -> None:
            await work(item)
            self.progress.advance()

        await asyncio.gather(*(one(i) for i in items))

    def customer(self, customer_id: str) -> Customer:
        return self.org.customer_by_id[customer_id]

    def rep(self, customer_id: str) -> Person:
        return self.org.people[self.customer(customer_id).rep_id]

    def supervisor(self, customer_id: str) -> Person:
        return self.org.supervisor_of_district(self.customer(customer_id).district_id)

    def approver(self, role: str, customer_id: str) -> Person:
        c = self.customer(customer_id)
        return {
            "supervisor": self.org.supervisor_of_district(c.district_id),
            "area_manager": self.org.manager_of_area(c.area_id),
            "sales_manager": self.org.sales_manager,
            "general_manager": self.org.general_manager,
        }.get(role, self.org.general_manager)

    def key(self, *parts: object) -> str:
        return ":".join(str(p) for p in parts)

    @staticmethod
    def day_note(day: date) -> str:
        return f"（业务日期 {day.isoformat()}）"

    # -- the run --------------------------------------------------------------------------------

    def phase(self, name: str) -> None:
        now = time.monotonic()
        if self._phase_name is not None:
            self.summary.phases.append((self._phase_name, now - self._phase_started))
        self._phase_name, self._phase_started = name, now
        if name:
            self.progress.phase(name)

    async def run(self) -> Summary:
        started = time.monotonic()
        self.progress.add_total(self._units())
        await self.territory()
        await asyncio.gather(self.catalogue(), self.customers(), *self._office("setup"))
        self.phase("routes, targets, directories")
        await asyncio.gather(
            self.routes(),
            self.targets(),
            self.wait_for_directories(),
            self.standard_pictures(),
            *self._office("targets"),
        )
        await self.request_route_plans()
        await self.history()
        self.phase("finding the imported orders")
        await self.index_history_orders()
        await self.today()
        await self.field_review()
        self.phase("")
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _office(self, part: str) -> list[Awaitable[None]]:
        """The sales office's part of a phase, if the department has an office."""
        return [getattr(self.office, part)()] if self.office is not None else []

    def _units(self) -> int:
        org, today = self.org, self.plan.days[-1]
        archive = sum(2 + (c.source == "customer_form") + c.approved + (c.credit is not None) for c in org.customers)
        setup = (
            len(org.divisions)
            + len(org.areas)
            + len(org.districts)
            + len(org.staff)
            + len(org.skus)
            + len(org.area_prices)
            + len(org.required_skus)
            + len(org.promotions)
            + archive
            + len(org.routes)
            + len(STANDARD_PICTURES)
            + len(org.targets)
            + len(org.decompositions)
        )
        undated = sum(
            len(self.plan.all(kind))
            for kind in (
                "returns",
                "complaints",
                "surveys",
                "key_account_reports",
                "coachings",
                "spot_checks",
                "contacts",
                "status_changes",
            )
        )
        live = len(today.visits) + len(today.orders) - len([o for o in today.orders if o.source == "visit"])
        office = self.office.units() if self.office is not None else 0
        return setup + len(self.plan.days) - 1 + undated + live + len(today.deliveries) + len(today.payments) + office

    # -- setup: territory, people, catalogue, customers, routes, targets ------------------------

    async def territory(self) -> None:
        self.phase("territory and staff")
        boss = self.org.sales_manager
        await self.each(
            self.org.divisions,
            lambda d: self.send(
                "customer",
                "define_division",
                {"division_id": d.division_id, "name": d.name},
                boss,
                key=self.key("division", d.division_id),
            ),
        )
        await self.each(
            self.org.areas,
            lambda a: self.send(
                "customer",
                "define_area",
                {"area_id": a.area_id, "name": a.name, "division_id": a.division_id},
                boss,
                key=self.key("area", a.area_id),
            ),
        )
        await self.each(
            self.org.districts,
            lambda d: self.send(
                "customer",
                "define_district",
                {"district_id": d.district_id, "name": d.name, "area_id": d.area_id},
                boss,
                key=self.key("district", d.district_id),
            ),
        )
        for role in ("area_manager", "supervisor", "rep"):  # a rep's supervisor is assigned first
            await self.each(
                [p for p in self.org.staff if p.role == role],
                lambda p: self.send(
                    "customer",
                    "assign_staff",
                    {
                        "staff_id": p.staff_id,
                        "name": p.name,
                        "role": p.role,
                        "district_id": p.district_id,
                        "area_id": p.area_id if p.role == "area_manager" else None,
                        "supervisor_id": p.supervisor_id,
                    },
                    boss,
                    key=self.key("staff", p.staff_id),
                ),
            )

    async def catalogue(self) -> None:
        boss = self.org.sales_manager
        await self.each(
            self.org.skus,
            lambda s: self.send(
                "orders",
                "define_sku",
                {
                    "sku": s.sku,
                    "name": s.name,
                    "brand": s.brand,
                    "product_group": s.product_group,
                    "package": s.package,
                    "list_price_fen": s.list_price_fen,
                    "floor_price_fen": s.floor_price_fen,
                },
                boss,
                key=self.key("sku", s.sku),
            ),
        )
        # Area managers float their own area's prices (价格浮动权).
        await self.each(
            self.org.area_prices,
            lambda p: self.send(
                "orders",
                "set_sku_price",
                {
                    "sku": p.sku,
                    "area_id": p.area_id,
                    "list_price_fen": p.list_price_fen,
                    "floor_price_fen": p.floor_price_fen,
                },
                self.org.manager_of_area(p.area_id),
                key=self.key("price", p.sku, p.area_id),
            ),
        )
        await self.each(
            self.org.required_skus,
            lambda cs: self.send(
                "orders",
                "set_required_skus",
                {"channel": cs[0], "skus": list(cs[1])},
                boss,
                key=self.key("required", self.org.tag, cs[0]),
            ),
        )
        await self.each(
            self.org.promotions,
            lambda p: self.send(
                "orders",
                "plan_promotion",
                {
                    "promotion_id": p.promotion_id,
                    "name": p.name,
                    "starts_on": p.starts_on.isoformat(),
                    "ends_on": p.ends_on.isoformat(),
                    "skus": list(p.skus),
                    "channels": list(p.channels),
                    "discount_percent": p.discount_percent,
                    "gift_rule": {"buy": p.gift_buy, "get": p.gift_get} if p.gift_buy else None,
                    "budget_fen": p.budget_fen,
                },
                boss,
                key=self.key("promotion", p.promotion_id),
            ),
        )

    async def customers(self) -> None:
        """The archive, in bulk through the customer service's ingest: reps register their
        outlets, supervisors verify the forms and approve (or reject) them, classify the
        approved ones, and the sales manager sets credit terms. Each step waits for the one
        before; within a step the service takes the commands in batches."""
        self.phase("customers")
        org = self.org
        registered = await self.ingest(
            "customer",
            "register_customer",
            [
                (
                    {
                        "customer_id": c.customer_id,
                        "name": c.name,
                        "address": c.address,
                        "phone": c.phone,
                        "nature": c.nature,
                        "ownership": c.ownership,
                        "channel": c.channel,
                        "location_type": c.location_type,
                        "source": c.source,
                        "base": {"owner": {"name": c.owner_name, "phone": c.phone}},
                        "position": {"latitude": c.latitude, "longitude": c.longitude},
                    },
                    org.people[c.rep_id],
                    self.key("register", c.customer_id),
                )
                for c in org.customers
            ],
            advance=True,
        )
        known = [c for c, r in zip(org.customers, registered, strict=True) if r.ok]
        # Customers exaggerate on forms: the supervisor verifies before approving (a form
        # verified in an earlier run answers already_verified, which changes nothing).
        await self.ingest(
            "customer",
            "verify_customer_data",
            [
                (
                    {"customer_id": c.customer_id, "note": "上门核实店面与营业执照"},
                    org.supervisor_of_district(c.district_id),
                    self.key("verify", c.customer_id),
                )
                for c in known
                if c.source == "customer_form"
            ],
            advance=True,
        )
        decided = await self.ingest(
            "customer",
            "approve_customer",
            [
                (
                    {"customer_id": c.customer_id, "status": c.status},
                    org.supervisor_of_district(c.district_id),
                    self.key("approve", c.customer_id),
                )
                for c in known
                if c.approved
            ],
            advance=True,
        )
        await self.ingest(
            "customer",
            "reject_customer",
            [
                (
                    {"customer_id": c.customer_id, "reason": c.rejection_reason or "不符合开户条件"},
                    org.supervisor_of_district(c.district_id),
                    self.key("reject", c.customer_id),
                )
                for c in known
                if not c.approved
            ],
            advance=True,
        )
        approved = [c for c, r in zip([c for c in known if c.approved], decided, strict=True) if r.ok]
        await asyncio.gather(
            self.ingest(
                "customer",
                "classify_customer",
                [
                    (
                        {"customer_id": c.customer_id, "grade": c.grade, "reason": "按近12个月销售额分级"},
                        org.supervisor_of_district(c.district_id),
                        self.key("grade", c.customer_id),
                    )
                    for c in approved
                ],
                advance=True,
            ),
            self.ingest(
                "customer",
                "set_credit_limit",
                [
                    (
                        {
                            "customer_id": c.customer_id,
                            "credit_rating": c.credit.rating,
                            "credit_limit_fen": c.credit.limit_fen,
                            "payment_terms_days": c.credit.terms_days,
                            "reason": "年度信用评审",
                        },
                        org.sales_manager,
                        self.key("credit", c.customer_id),
                    )
                    for c in approved
                    if c.credit is not None
                ],
                advance=True,
            ),
        )
        self._settled_customers = [c.customer_id for c in approved]

    async def standard_pictures(self) -> None:
        """The sales manager's standard success pictures (成功图象), one checklist per channel."""
        await self.each(
            sorted(STANDARD_PICTURES.items()),
            lambda item: self.send(
                "visit",
                "define_standard_picture",
                {"channel": item[0], "items": [{"code": c, "description": d} for c, d in item[1]]},
                self.org.sales_manager,
                key=self.key("standard", item[0]),
            ),
        )

    async def request_route_plans(self) -> None:
        """Each district's supervisor asks the planner (路序) for the routes of the district's
        first rep, from the district office, Monday to Saturday; the visit service's planner
        proposes them while the day goes on."""
        self.plan_requests: list[tuple[str, Person]] = []
        for district in sorted(self.org.districts, key=lambda d: d.district_id):
            reps = sorted(r.staff_id for r in self.org.reps if r.district_id == district.district_id)
            if not reps:
                continue
            supervisor = self.org.supervisor_of_district(district.district_id)
            plan_id = self.id_for("route_plan", f"{reps[0]}:{self.plan.end.isoformat()}")
            reply = await self.send(
                "visit",
                "request_route_plan",
                {
                    "plan_id": plan_id,
                    "rep_id": reps[0],
                    "start_latitude": district.latitude,
                    "start_longitude": district.longitude,
                    "workdays": [1, 2, 3, 4, 5, 6],
                },
                supervisor,
                key=self.key("route_plan", reps[0], self.plan.end.isoformat()),
                wait_for=WAITING_FOR_EVENTS,
            )
            if reply.ok:
                self.plan_requests.append((plan_id, supervisor))

    async def field_review(self) -> None:
        """The supervisors' end of the day: confirm a check-in made away from an outlet whose
        card position is wrong, review the day's photos, adopt the first route plan the
        planner has proposed, and the first district closes the month's route cleanup."""
        self.phase("supervisors: check-ins, photos, route plans, cleanup")
        today = self.plan.end.isoformat()

        async def review(district: Any) -> None:
            supervisor = self.org.supervisor_of_district(district.district_id)
            flagged = await self.get("visit", "/check-ins/flagged", supervisor, district_id=district.district_id)
            if flagged.ok:
                far = [
                    c
                    for c in flagged.body["check_ins"]
                    if "far_from_outlet" in c["flags"] and c["confirmed_by"] is None and c["business_date"] == today
                ]
                if far:
                    await self.send(
                        "visit",
                        "confirm_check_in",
                        {"visit_id": far[0]["visit_id"], "note": "门店已搬迁, 以签到位置为准"},
                        supervisor,
                        key=self.key("confirm_check_in", far[0]["visit_id"]),
                    )
            photos = await self.get("visit", "/photos/review", supervisor, district_id=district.district_id)
            for i, photo in enumerate(photos.body.get("photos", [])[:4] if photos.ok else []):
                disputed = photo["audit"]["standard_met"] is False and i % 2 == 1
                await self.send(
                    "visit",
                    "review_photo",
                    {
                        "visit_id": photo["visit_id"],
                        "photo_id": photo["photo_id"],
                        "verdict": "disputed" if disputed else "confirmed",
                        "note": "照片与检查表不符" if disputed else None,
                    },
                    supervisor,
                    key=self.key("review_photo", photo["photo_id"]),
                )

        await asyncio.gather(*(review(d) for d in self.org.districts))
        for plan_id, supervisor in getattr(self, "plan_requests", []):
            plan = await self.get("visit", f"/route-plans/{plan_id}", supervisor)
            if plan.ok and plan.body["status"] == "proposed":
                await self.send(
                    "visit", "adopt_route_plan", {"plan_id": plan_id}, supervisor, key=self.key("adopt", plan_id)
                )
                break
        first = min(self.org.districts, key=lambda d: d.district_id)
        await self.send(
            "visit",
            "close_route_cleanup",
            {"district_id": first.district_id, "month": self.plan.end.strftime("%Y-%m"), "notes": "月度线路清理"},
            self.org.supervisor_of_district(first.district_id),
            key=self.key("route_cleanup", first.district_id, self.plan.end.strftime("%Y-%m")),
        )

    async def routes(self) -> None:
        await self.each(
            self.org.routes,
            lambda r: self.send(
                "visit",
                "define_route",
                {
                    "route_id": r.route_id,
                    "route_name": r.name,
                    "weekdays": list(r.weekdays),
                    "customer_ids": list(r.customer_ids),
                },
                self.org.people[r.rep_id],
                key=self.key("route", r.route_id),
                wait_for=WAITING_FOR_EVENTS,
            ),
        )

    async def targets(self) -> None:
        await self.each(
            self.org.targets,
            lambda t: self.send(
                "reporting",
                "set_target",
                {
                    "month": t.month,
                    "level": t.level,
                    "subject_id": t.subject_id,
                    "product_group": t.product_group,
                    "amount_fen": t.amount_fen,
                },
                self.org.sales_manager,
                key=self.key("target", t.month, t.level, t.subject_id, t.product_group),
                wait_for=WAITING_FOR_EVENTS,
            ),
        )
        for level in ("area", "district"):  # a district's target exists once its area's is split
            await self.each(
                [d for d in self.org.decompositions if d.level == level],
                lambda d: self.send(
                    "reporting",
                    "decompose_target",
                    {
                        "month": d.month,
                        "level": d.level,
                        "subject_id": d.subject_id,
                        "into": d.into,
                        "weights": dict(d.weights),
                    },
                    self.org.people[d.by],
                    key=self.key("split", d.month, d.level, d.subject_id),
                    wait_for=WAITING_FOR_EVENTS,
                ),
            )

    async def wait_for_directories(self) -> None:
        """The visit and orders services learn customers and SKUs from events; the history and
        the day's visits need them there. Wait until the last customers settled are known."""
        sample = self._settled_customers[-10:]
        boss = self.org.sales_manager

        async def visit_knows() -> bool:
            skus = await self.get("visit", "/directory/skus", boss)
            if not skus.ok or len(skus.body.get("skus", [])) < len(self.org.skus):
                return False
            for cid in sample:
                row = await self.get("visit", f"/directory/customers/{cid}", boss)
                if not row.ok or row.body.get("grade") != self.customer(cid).grade:
                    return False
            return True

        async def orders_know() -> bool:
            for cid in sample:
                if not (await self.get("orders", "/orders", boss, customer_id=cid, limit=1)).ok:
                    return False
            return True

        for name, check in (("visit", visit_knows), ("orders", orders_know)):
            deadline = time.monotonic() + self.patience
            while not await check():
                if time.monotonic() > deadline:
                    self.summary.skipped[f"{name} directory still behind after {self.patience:.0f}s (went on)"] += 1
                    break
                await asyncio.sleep(0.3)

    # -- past days ------------------------------------------------------------------------------

    def _history_records(self, day_index: int) -> list[dict[str, Any]]:
        day = self.plan.days[day_index]
        records: list[dict[str, Any]] = []
        for o in day.orders:
            records.append(
                {
                    "kind": "order",
                    "record_id": o.key,
                    "customer_id": o.customer_id,
                    "placed_at": o.placed_at.isoformat(),
                    "lines": [
                        {"sku": x.sku, "quantity": x.quantity, "unit_price_fen": x.unit_price_fen} for x in o.lines
                    ],
                    "rep_id": o.rep_id,
                }
            )
        for d in day.deliveries:
            records.append(
                {
                    "kind": "delivery",
                    "record_id": d.key,
                    "order_record_id": d.order_key,
                    "delivered_at": d.delivered_at.isoformat(),
                    "payment_terms_days": d.payment_terms_days,
                }
            )
        for p in day.payments:
            records.append(
                {
                    "kind": "payment",
                    "record_id": p.key,
                    "customer_id": p.customer_id,
                    "amount_fen": p.amount_fen,
                    "received_on": p.day.isoformat(),
                    "allocations": [{"order_record_id": k, "amount_fen": a} for k, a in p.allocations],
                }
            )
        return records

    async def history(self) -> None:
        """Past days through `import_history`, one day after the other (a delivery refers to an
        order imported the day before). Idempotent by record id, so a chunk refused in part
        because a customer had not reached the orders service yet is simply sent again."""
        self.phase("history (past days)")
        past_visits = sum(len(d.visits) for d in self.plan.days[:-1])
        if past_visits:
            self.summary.skipped[
                "route visits of past days: a visit is checked in only on its own business day,"
                " so they went in as the orders they produced (history import)"
            ] += past_visits
        for i in range(len(self.plan.days) - 1):
            records = self._history_records(i)
            for start in range(0, len(records), IMPORT_CHUNK):
                await self._import(records[start : start + IMPORT_CHUNK])
            self.progress.advance()

    async def _import(self, records: list[dict[str, Any]]) -> None:
        deadline = time.monotonic() + self.patience
        counted = False
        while True:
            reply = await self.send("orders", "import_history", {"records": records}, self.org.erp, key=None)
            report = reply.result
            waiting = [
                r for r in report.get("rejected", []) if str(r.get("message", "")).startswith("unknown customer")
            ]
            if reply.ok and waiting and time.monotonic() < deadline:
                if not counted:
                    self.summary.retried[("orders", "import_history", "unknown customer")] += 1
                    counted = True
                await asyncio.sleep(1.0)
                continue
            for name in ("orders", "deliveries", "payments", "already_imported"):
                self.summary.imported[name] += int(report.get(name, 0))
            for r in report.get("rejected", []):
                self.summary.import_rejections[f"{r.get('field')}: {str(r.get('message'))[:90]}"] += 1
            return

    async def index_history_orders(self) -> None:
        """Ids of the imported orders, found by customer and time through the orders query (the
        import derives them from the record ids; outside programs look them up)."""
        wanted = {
            (o.customer_id, int(o.placed_at.timestamp())): o.key
            for o in self.plan.all("orders")
            if o.day < self.plan.end
        }
        if not wanted:
            return
        offset = 0
        while True:
            page = await self.get(
                "orders",
                "/orders",
                self.org.sales_manager,
                date_from=self.plan.start.isoformat(),
                date_to=(self.plan.end - timedelta(days=1)).isoformat(),
                limit=500,
                offset=offset,
            )
            if not page.ok:
                self.summary.skipped[f"order index: GET /orders answered {page.status}"] += 1
                return
            rows = page.body.get("orders", [])
            for row in rows:
                placed = datetime.fromisoformat(str(row["placed_at"]))
                key = wanted.get((row["customer_id"], int(placed.timestamp())))
                if key is not None:
                    self.order_ids[key] = row["order_id"]
            offset += len(rows)
            if not rows or offset >= int(page.body.get("total", 0)):
                return

    # -- today ----------------------------------------------------------------------------------

    async def today(self) -> None:
        """The last day lived live; with it, what earlier days did through commands that take
        no date (returns, surveys, reports, coaching, spot checks, follow-ups), sent now with
        their business day in the notes, and the complaints of every day."""
        self.phase("today: visits, orders, returns, complaints")
        day = self.plan.days[-1]
        phone = [o for o in day.orders if o.source == "phone"]
        plan = self.plan
        await asyncio.gather(
            *self._office("day"),
            self.visits(day.visits),
            self.phone_orders(phone),
            self.each(day.deliveries, self.deliver_history_order),
            self.each(plan.all("returns"), self.return_request),
            self.each(plan.all("complaints"), self.complaint),
            self.surveys(plan.all("surveys")),
            self.each(
                plan.all("key_account_reports"),
                lambda r: self.send(
                    "visit",
                    "file_key_account_report",
                    {
                        "report_id": self.id_for("report", r.key),
                        "customer_id": r.customer_id,
                        "summary": r.summary + self.day_note(r.day),
                        "issues": [{"department": d, "description": t} for d, t in r.issues],
                    },
                    self.org.people[r.rep_id],
                    key=self.key("ka", r.key),
                    wait_for=WAITING_FOR_EVENTS,
                ),
            ),
            self.each(
                plan.all("coachings"),
                lambda c: self.send(
                    "visit",
                    "record_coaching",
                    {
                        "rep_id": c.rep_id,
                        "notes": c.notes + self.day_note(c.day),
                        "strengths": list(c.strengths),
                        "improvements": list(c.improvements),
                    },
                    self.org.people[c.supervisor_id],
                    key=self.key("coaching", c.key),
                    wait_for=WAITING_FOR_EVENTS,
                ),
            ),
            self.each(plan.all("spot_checks"), self.spot_check),
            self.each(
                plan.all("contacts"),
                lambda c: self.send(
                    "customer",
                    "log_contact",
                    {"customer_id": c.customer_id, "channel": c.channel, "note": c.note + self.day_note(c.day)},
                    self.org.people[c.rep_id],
                    key=self.key("contact", c.key),
                ),
            ),
            self.each(
                plan.all("status_changes"),
                lambda s: self.send(
                    "customer",
                    "change_status",
                    {"customer_id": s.customer_id, "status": s.status, "reason": s.reason},
                    self.supervisor(s.customer_id),
                    key=self.key("status", s.key),
                ),
            ),
        )
        await self.settle_live_orders(day.orders)
        # Money comes in for what has been invoiced, i.e. delivered, so after the deliveries.
        await self.each(day.payments, self.payment)

    async def visits(self, visits: Sequence[Visit]) -> None:
        """Each rep walks the day's route in order; the reps work at the same time."""
        by_rep: dict[str, list[Visit]] = {}
        for v in visits:
            by_rep.setdefault(v.rep_id, []).append(v)

        async def walk(rep_visits: list[Visit]) -> None:
            for v in sorted(rep_visits, key=lambda v: v.sequence):
                await self.visit(v)
                self.progress.advance()

        await asyncio.gather(*(walk(vs) for vs in by_rep.values()))

    async def visit(self, v: Visit) -> None:
        rep = self.org.people[v.rep_id]
        customer = self.customer(v.customer_id)
        k = v.key
        planned = await self.send(
            "visit",
            "plan_visit",
            {
                "rep_id": v.rep_id,
                "customer_id": v.customer_id,
                "business_date": v.day.isoformat(),
                "route_id": v.route_id,
                "sequence": v.sequence,
            },
            self.org.planner,
            key=self.key(k, "plan"),
            wait_for=WAITING_FOR_EVENTS,
        )
        if not planned.ok:
            return
        visit_id = planned.result["visit_id"]
        if planned.result.get("approval") == "pending":  # a key account: the supervisor decides
            supervisor = self.supervisor(v.customer_id)
            if v.outcome == "cancelled":
                await self.send(
                    "visit",
                    "reject_visit",
                    {"visit_id": visit_id, "reason": "本周已安排主管陪访，改期"},
                    supervisor,
                    key=self.key(k, "reject"),
                )
                return
            await self.send("visit", "approve_visit", {"visit_id": visit_id}, supervisor, key=self.key(k, "approve"))
        if v.outcome in ("missed", "cancelled"):
            return  # nobody comes: the service marks it missed when the business day ends

        async def step(name: str, payload: dict[str, Any], n: str = "", wait_for: Iterable[str] = ()) -> Reply:
            return await self.send(
                "visit", name, {"visit_id": visit_id, **payload}, rep, key=self.key(k, name, n), wait_for=wait_for
            )

        latitude, longitude, accuracy = v.check_in or (customer.latitude, customer.longitude, 10.0)
        checked_in = await step("check_in", {"latitude": latitude, "longitude": longitude, "accuracy_m": accuracy})
        if not checked_in.ok:
            return
        photo_ids: list[str] = []
        if v.photo:
            uploaded = await self.upload(
                "visit", f"/visits/{visit_id}/photos", shelf_png(k), "image/png", rep, kind="display"
            )
            if uploaded.ok:
                photo_ids.append(uploaded.result["photo_id"])
        counted = await step(
            "count_stock",
            {"lines": [{"sku": s.sku, "shelf_qty": s.shelf_qty, "store_qty": s.store_qty} for s in v.stock]},
            wait_for={"unknown_sku"},
        )
        audit: dict[str, Any] = {
            "present_skus": list(v.present_skus),
            "price_tags_ok": v.price_tags_ok,
            "display_ok": v.display_ok,
        }
        if photo_ids:
            # The rep ticks the channel's standard picture from what the photo shows.
            seen = {
                "brand_block": v.display_ok,
                "price_tags": v.price_tags_ok,
                "required_skus": all(
                    s.shelf_qty > 0 for s in v.stock if s.sku in dict(self.org.required_skus).get(customer.channel, ())
                ),
                "cooler_front": bool(v.coolers) and all(c.best_position for c in v.coolers),
            }
            audit |= {
                "checklist": {code: seen[code] for code, _ in STANDARD_PICTURES[customer.channel]},
                "photo_ids": photo_ids,
            }
        await step("audit_merchandising", audit, wait_for={"unknown_sku"})
        for c in v.coolers:
            await step(
                "check_cooler",
                {
                    "cooler_id": c.cooler_id,
                    "at_outlet": c.at_outlet,
                    "best_position": c.best_position,
                    "powered": c.powered,
                    "light_on": c.light_on,
                    "clean": c.clean,
                    "working": c.working,
                    "required_packs": c.required_packs,
                    "misused": c.misused,
                },
                n=c.cooler_id,
            )
        if v.competitor is not None:
            seen = v.competitor
            await step(
                "observe_competitor",
                {
                    "brand": seen.brand,
                    "product": seen.product,
                    "price_fen": seen.price_fen,
                    "promotion": seen.promotion,
                    "stock_age_days": seen.stock_age_days,
                },
            )
        if v.order_key is not None:
            order = self.plan.order_by_key[v.order_key]
            quantities = {line.sku: line.quantity for line in order.lines}
            if v.adopt_suggestion:  # the rep takes the suggested order (建议订单) and adds to it
                for s in counted.result.get("suggested", []):
                    quantities[s["sku"]] = max(quantities.get(s["sku"], 0), int(s["quantity"]))
            lines = [{"sku": sku, "quantity": q} for sku, q in sorted(quantities.items())]
            taken = await step("take_order", {"lines": lines}, wait_for={"unknown_sku"})
            if taken.ok:
                self.order_ids[order.key] = taken.result["order_id"]
        else:
            await step("refuse_order", {"reason": v.refusal_reason or "暂不需要"})
        if v.previous_delivered is not None:
            await step("confirm_delivery", {"delivered": v.previous_delivered}, wait_for={"no_previous_order"})
        await step("check_out", {})

    async def phone_orders(self, orders: Sequence[Order]) -> None:
        items = [
            (
                {
                    "order_id": o.order_id,
                    "customer_id": o.customer_id,
                    "source": "phone",
                    "lines": [{"sku": x.sku, "quantity": x.quantity} for x in o.lines],
                },
                self.org.call_centre,
                self.key("phone", o.key),
            )
            for o in orders
        ]
        replies = await self.ingest("orders", "place_order", items, advance=True)
        for o, reply in zip(orders, replies, strict=True):
            if reply.ok:
                self.order_ids[o.key] = reply.result.get("order_id", o.order_id or "")

    async def surveys(self, surveys: Sequence[Any]) -> None:
        await self.ingest(
            "visit",
            "record_survey",
            [
                (
                    {"customer_id": s.customer_id, "scores": dict(s.scores), "satisfied": s.satisfied},
                    self.org.survey_desk,
                    self.key("survey", s.key),
                )
                for s in surveys
            ],
            advance=True,
        )

    async def deliver_history_order(self, d: Delivery) -> None:
        """An order imported as history, delivered today at the planned time (if it has come)."""
        order = self.plan.order_by_key[d.order_key]
        if order.day == self.plan.end:
            return  # today's own orders are settled after they are placed
        order_id = self.order_ids.get(d.order_key)
        if order_id is None:
            self.summary.skipped["delivery of an imported order not found by the order query"] += 1
            return
        if d.delivered_at > self.clock():
            self.summary.skipped["delivery planned for later today"] += 1
            return
        logistics = self.org.logistics
        await self.send("orders", "dispatch_order", {"order_id": order_id}, logistics, key=self.key(d.key, "dispatch"))
        await self.send(
            "orders",
            "deliver_order",
            {"order_id": order_id, "delivered_at": d.delivered_at.isoformat()},
            logistics,
            key=self.key(d.key, "deliver"),
        )

    async def payment(self, p: Any) -> None:
        """Today's payments, against the invoices the plan means (found through the customer's
        receivables); an invoice not issued (its delivery has not come yet) is not paid."""
        invoices = await self.get("orders", f"/receivables/{p.customer_id}", self.org.sales_manager)
        by_order = {i["order_id"]: i for i in (invoices.body or {}).get("invoices", [])} if invoices.ok else {}
        allocations = []
        for order_key, amount in p.allocations:
            invoice = by_order.get(self.order_ids.get(order_key, ""))
            if invoice is not None:
                # What is still open, unless nothing is: then it was paid by an earlier run of
                # this plan, whose idempotency key answers again with the first result.
                open_fen = int(invoice.get("open_fen", 0))
                allocations.append(
                    {
                        "invoice_id": invoice["invoice_id"],
                        "amount_fen": min(amount, open_fen) if open_fen > 0 else amount,
                    }
                )
        if not allocations:
            self.summary.skipped["payment of an invoice not issued yet (its delivery is later today)"] += 1
            return
        await self.send(
            "orders",
            "record_payment",
            {
                "payment_id": self.id_for("payment", p.key),
                "customer_id": p.customer_id,
                "amount_fen": sum(a["amount_fen"] for a in allocations),
                "received_on": p.day.isoformat(),
                "allocations": allocations,
            },
            self.rep(p.customer_id),
            key=self.key("payment", p.key),
        )

    async def return_request(self, r: Return) -> None:
        order_id = self.order_ids.get(r.order_key)
        if order_id is None:
            self.summary.skipped["return on an order not found by the order query"] += 1
            return
        requested = await self.send(
            "orders",
            "request_return",
            {
                "return_id": self.id_for("return", r.key),
                "order_id": order_id,
                "lines": [{"sku": s, "quantity": q} for s, q in r.lines] if r.lines else None,
                "scope": r.scope,
                "reason": r.reason,
                "wrong_shipment_kind": r.wrong_shipment_kind,
                "detail": r.detail + self.day_note(r.day),
            },
            self.rep(r.customer_id),
            key=self.key(r.key, "request"),
        )
        if not requested.ok:
            return
        return_id = requested.result["return_id"]
        confirmed = True
        if requested.result.get("inspection_required"):
            confirmed = r.inspection_confirmed
            await self.send(
                "orders",
                "record_return_inspection",
                {
                    "return_id": return_id,
                    "confirmed": confirmed,
                    "notes": "复检确认问题属实" if confirmed else "复检未发现问题",
                },
                self.org.inspector,
                key=self.key(r.key, "inspect"),
            )
        if r.decision == "wait":
            return  # in the approver's queue
        approver = self.approver(str(requested.result.get("approver_role")), r.customer_id)
        if not confirmed or r.decision == "reject":
            await self.send(
                "orders",
                "reject_return",
                {"return_id": return_id, "reason": r.rejection_reason},
                approver,
                key=self.key(r.key, "reject"),
            )
            return
        approved = await self.send(
            "orders", "approve_return", {"return_id": return_id}, approver, key=self.key(r.key, "approve")
        )
        if not approved.ok:
            return
        resolved = await self.send(
            "orders",
            "resolve_return",
            {
                "return_id": return_id,
                "resolution": r.resolution,
                "amount_fen": int(requested.result.get("amount_fen", 0)),
            },
            approver,
            key=self.key(r.key, "resolve"),
        )
        if resolved.ok and r.goods_received:
            await self.send(
                "orders",
                "receive_returned_goods",
                {"return_id": return_id},
                self.org.logistics,
                key=self.key(r.key, "goods"),
            )

    async def complaint(self, c: Complaint) -> None:
        """Received at its own time where that is honest: when it stays unanswered (so the 48 h
        breach is real) or when the answer today is still within 48 hours of it. An older
        complaint answered in time is received today, with its business day in the text."""
        now = self.clock()
        dated = c.received_at <= now and (c.stage == "received" or now - c.received_at <= timedelta(hours=47))
        payload: dict[str, Any] = {
            "complaint_id": self.id_for("complaint", c.key),
            "customer_id": c.customer_id,
            "channel": c.channel,
            "category": c.category,
            "severity": c.severity,
            "description": c.description if dated else c.description + self.day_note(c.day),
        }
        if dated:
            payload["received_at"] = c.received_at.isoformat()
        received = await self.send(
            "visit",
            "receive_complaint",
            payload,
            self.org.call_centre,
            key=self.key(c.key, "receive"),
            wait_for=WAITING_FOR_EVENTS,
            via="nats",
        )
        if not received.ok:
            return
        complaint_id = received.result["complaint_id"]
        supervisor = self.supervisor(c.customer_id)
        steps = [
            ("acknowledged", "acknowledge_complaint", {}),
            ("routed", "route_complaint", {}),
            ("resolved", "resolve_complaint", {"resolution": c.resolution, "customer_misuse": c.customer_misuse}),
            ("closed", "close_complaint", {"customer_confirmed": True}),
        ]
        order = ("received", "acknowledged", "routed", "resolved", "closed")
        for stage, name, extra in steps:
            if order.index(c.stage) < order.index(stage):
                return
            reply = await self.send(
                "visit",
                name,
                {"complaint_id": complaint_id, **extra},
                supervisor,
                key=self.key(c.key, name),
                via="nats",
            )
            if not reply.ok:
                return

    async def spot_check(self, s: Any) -> None:
        order_id = self.order_ids.get(s.order_key)
        if order_id is None:
            self.summary.skipped["spot check of an order not found by the order query"] += 1
            return
        await self.send(
            "visit",
            "spot_check_delivery",
            {
                "order_id": order_id,
                "customer_id": s.customer_id,
                "delivered": s.delivered,
                "on_time": s.on_time,
                "quantities_match": s.quantities_match,
                "notes": s.notes + self.day_note(s.day),
            },
            self.org.people[s.supervisor_id],
            key=self.key("spot", s.key),
            wait_for=WAITING_FOR_EVENTS,
        )

    async def settle_live_orders(self, orders: Sequence[Order]) -> None:
        """Today's orders once the orders service has them (visit orders arrive through the
        visit service's events): approval by the role the order needs, or the rejection the plan
        has for it; then dispatch and delivery if the plan delivers it today."""
        self.phase("today: approvals and deliveries")
        expected = {self.order_ids[o.key]: o for o in orders if o.key in self.order_ids}
        if not expected:
            return
        rows: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + max(self.patience, 90.0)
        while True:
            offset = 0
            while True:
                page = await self.get(
                    "orders",
                    "/orders",
                    self.org.sales_manager,
                    date_from=self.plan.end.isoformat(),
                    date_to=self.plan.end.isoformat(),
                    limit=500,
                    offset=offset,
                )
                if not page.ok:
                    break
                batch = page.body.get("orders", [])
                rows.update({r["order_id"]: r for r in batch if r["order_id"] in expected})
                offset += len(batch)
                if not batch or offset >= int(page.body.get("total", 0)):
                    break
            if len(rows) >= len(expected) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        missing = len(expected) - len(rows)
        if missing:
            self.summary.skipped[
                "orders taken today that the orders service did not show "
                f"within {max(self.patience, 90.0):.0f}s (see GET /visit-orders)"
            ] += missing
        self.progress.add_total(len(rows))

        async def settle(order_id: str) -> None:
            order, row = expected[order_id], rows[order_id]
            if row.get("status") == "pending_approval":
                if order.if_approval == "wait":
                    return  # in the approver's queue, not delivered
                approver = self.approver(str(row.get("required_role")), order.customer_id)
                if order.if_approval == "reject":
                    await self.send(
                        "orders",
                        "reject_order",
                        {"order_id": order_id, "reason": "超出信用额度且有逾期欠款，暂缓发货"},
                        approver,
                        key=self.key(order.key, "reject"),
                    )
                    return
                approved = await self.send(
                    "orders", "approve_order", {"order_id": order_id}, approver, key=self.key(order.key, "approve")
                )
                if not approved.ok:
                    return
            elif row.get("status") != "confirmed":
                return
            if order.key in self.plan.delivery_by_order:
                logistics = self.org.logistics
                await self.send(
                    "orders", "dispatch_order", {"order_id": order_id}, logistics, key=self.key(order.key, "dispatch")
                )
                await self.send(
                    "orders", "deliver_order", {"order_id": order_id}, logistics, key=self.key(order.key, "deliver")
                )

        await self.each(list(rows), settle)


async def drive(plan: Plan, **kwargs: Any) -> Summary:
    """Open the connections, run the plan, close them."""
    async with Driver(plan, **kwargs) as driver:
        return await driver.run()
