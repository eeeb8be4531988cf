"""`make chaos`: the whole system under a steady load of orders while its pieces fail, then a
reconciliation of every command sent.

It starts PostgreSQL, a three-node NATS cluster (the production layout of accounts, with the
services' streams replicated on all three nodes) and the four services as real processes on free
loopback ports, registers a small department through the services' own commands, and sends
`place_order` to `orders.ingest.place_order` as an outside system would: a steady rate, every
command with an idempotency key of its own, one in ten naming a customer nobody registered.
Meanwhile it injects, one after another, each fault of `FULL_FAULTS` (`SMALL_FAULTS` in the test
suite) and takes the piece back 5 s later. A command belongs to the fault during which it was
sent.

When every command has been processed it reconciles: each valid command placed its order exactly
once in the orders service's event log; each invalid one was dead-lettered as `rejected` for
`unknown_customer`; no dead letter came from an outage; the reporting service counts exactly the
orders placed, with their amounts; and, where the orders service keeps its results in a stream
(`ORDERS_RESULTS`), each command has one result there. It prints a table — fault, valid commands
sent, accepted, lost, doubled, wrongly rejected, and recovery time (from the fault until a
command sent after the piece came back was answered) — and fails on any loss, duplicate or wrong
rejection.

Only loopback; it kills only processes it started, by pid.

    python -m salesplatform.devstack chaos [--small] [--rate 40] [--keep DIR]
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import httpx
import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client as NATS

from salesplatform.auth import JWKS_FILE, SigningKey, init_keys, mint
from salesplatform.devstack.run import service_environment, start_service_process
from salesplatform.devstack.servers import (
    LOOPBACK,
    NatsServer,
    PostgresServer,
    ServerError,
    create_service_database,
    free_port,
    tail,
)
from salesplatform.events import Actor, Role
from salesplatform.messaging import Topology
from salesplatform.nats_layout import OPERATOR_USER, PRODUCTION, SYSTEM_USER, api_prefix, server_config

SERVICES: tuple[str, ...] = ("customer", "visit", "orders", "reporting")
CLUSTER_NODES = 3
# Seconds of load before a fault, of the piece being away, and after it is back.
LEAD_SECONDS = 3.0
DOWN_SECONDS = 5.0
TAIL_SECONDS = 3.0
# How long a fault may take to recover, and the load to drain, before the run gives up.
RECOVERY_LIMIT_SECONDS = 60.0
DRAIN_LIMIT_SECONDS = 120.0
# The faults of a run start within this many seconds of the load's start; one that would start
# later is not run, and the run fails saying so (a stack that recovers slowly is a finding, and
# the whole run stays within about ten minutes).
FAULTS_BUDGET_SECONDS = 420.0
READY_SECONDS = 180.0
# Every INVALID_EVERY-th command names a customer nobody registered.
INVALID_EVERY = 10
CUSTOMERS = 12
SKUS = (("CHAOS-COLA", 250), ("CHAOS-TEA", 400), ("CHAOS-WATER", 120))
KEY_PREFIX = "chaos-"


# Why a fault may still lose commands, until the command bus treats it as the outage it is.
# Why the cluster fault fails until streams get a replicas setting: a service's start brings
# its streams to one replica (even one made with three), so the node holding one takes it away.
@dataclass(frozen=True)
class Fault:
    """One fault of the run: what the table calls it, what is done, and to what."""

    name: str
    kind: str  # kill_service | kill_nats | kill_nats_node | kill_postmaster | pg_stop | second_instances
    target: str = ""


FULL_FAULTS: tuple[Fault, ...] = (
    *(Fault(f"kill -9 {name}", "kill_service", name) for name in SERVICES),
    Fault("kill -9 NATS (all nodes)", "kill_nats"),
    Fault("kill -9 PostgreSQL postmaster", "kill_postmaster"),
    Fault("pg_ctl stop -m immediate", "pg_stop", "immediate"),
    Fault("pg_ctl stop -m fast", "pg_stop", "fast"),
    Fault("second instance of every service", "second_instances"),
    Fault("kill -9 one NATS node (R3)", "kill_nats_node"),
)
SMALL_FAULTS: tuple[Fault, ...] = (
    Fault("kill -9 orders", "kill_service", "orders"),
    Fault("pg_ctl stop -m immediate", "pg_stop", "immediate"),
    Fault("kill -9 one NATS node (R3)", "kill_nats_node"),
)
STEADY = Fault("no fault (steady load)", "none")


class ChaosFailed(Exception):
    """The stack could not be brought up or back; the message says what."""


def _say(message: str = "") -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}" if message else "", flush=True)


# --- the stack ---------------------------------------------------------------------------------


@dataclass
class Instance:
    """One process of a service."""

    service: str
    http_port: int
    nats_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log: TextIO | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class ChaosStack:
    """PostgreSQL, a three-node NATS cluster and the services, under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.postgres = PostgresServer(root / "postgres")
        self.nats_passwords = {user: secrets.token_urlsafe(18) for user in PRODUCTION.users}
        self.database_passwords = {name: secrets.token_urlsafe(18) for name in SERVICES}
        self.database_urls: dict[str, str] = {}
        self.nodes: list[NatsServer] = []
        self.instances: dict[str, list[Instance]] = {name: [] for name in SERVICES}
        self.signing_key: SigningKey | None = None

    # -- bringing it up --

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.signing_key = init_keys(self.root / "auth")
        self.postgres.start()
        _say(f"postgres   {self.postgres.admin_dsn}")
        self._start_cluster()
        _say("nats       " + ", ".join(node.url for node in self.nodes))
        self.database_urls = asyncio.run(self._create_databases())
        for n, name in enumerate(SERVICES):
            self.instances[name].append(self.spawn(name, self.nodes[n % CLUSTER_NODES].url))
        self.wait_ready([i for group in self.instances.values() for i in group])

    def _start_cluster(self) -> None:
        """Three nodes on loopback, each with the generated accounts, routed to the others."""
        ports = [(free_port(), free_port(), free_port()) for _ in range(CLUSTER_NODES)]
        for n, (client, monitor, route) in enumerate(ports):
            config = self.root / f"nats-{n + 1}.conf"
            routes = [f"nats-route://{LOOPBACK}:{r}" for m, (_, _, r) in enumerate(ports) if m != n]
            settings = {
                "server_name": f"n{n + 1}",
                "cluster": {"name": "chaos", "listen": f"{LOOPBACK}:{route}", "routes": routes},
            }
            config.write_text(
                server_config(PRODUCTION, self.nats_passwords, settings=settings, comment="NATS node of make chaos")
            )
            config.chmod(0o600)
            self.nodes.append(NatsServer(self.root / f"nats-{n + 1}", client, monitor_port=monitor, config_file=config))
        for node in self.nodes:
            node.start()
        self.wait_for_cluster()

    def wait_for_cluster(self, timeout: float = 60.0) -> None:
        """Until JetStream has a meta leader and every node answers /healthz for its streams."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(_healthy(node) for node in self.nodes) and _meta_leader(self.nodes[0]):
                return
            time.sleep(0.25)
        raise ChaosFailed("the NATS cluster did not form: " + tail(self.nodes[0].log_file, 20))

    async def _create_databases(self) -> dict[str, str]:
        return {
            name: await create_service_database(self.postgres.admin_dsn, name, self.database_passwords[name])
            for name in SERVICES
        }

    def spawn(self, name: str, nats_url: str, *, http_port: int | None = None, label: str = "") -> Instance:
        instance = Instance(name, http_port or free_port(), nats_url, self.logs / f"{name}{label}.log")
        env = service_environment(
            name,
            http_port=instance.http_port,
            database_url=self.database_urls[name],
            nats_url=nats_url,
            nats_user=name,
            nats_password=self.nats_passwords[name],
            jwks_file=self.root / "auth" / JWKS_FILE,
            extra={"NATS_STREAM_REPLICAS": str(CLUSTER_NODES)},
        )
        instance.log = instance.log_path.open("a")
        instance.process = start_service_process(name, env, instance.log, f"started by make chaos on {nats_url}")
        return instance

    def wait_ready(self, instances: Sequence[Instance], timeout: float = READY_SECONDS) -> None:
        pending = list(instances)
        deadline = time.monotonic() + timeout
        while pending:
            for instance in list(pending):
                if not instance.alive():
                    raise ChaosFailed(f"{instance.service} exited while starting:\n{tail(instance.log_path, 30)}")
                if _ready(instance.base_url):
                    pending.remove(instance)
            if pending and time.monotonic() > deadline:
                raise ChaosFailed(
                    f"{pending[0].service} not ready in {timeout:.0f} s:\n{tail(pending[0].log_path, 30)}"
                )
            time.sleep(0.25)

    # -- faults --

    def kill(self, instance: Instance) -> None:
        """SIGKILL one service process this stack started."""
        if instance.process is not None and instance.process.poll() is None:
            os.kill(instance.process.pid, signal.SIGKILL)
            instance.process.wait()

    def restart(self, instance: Instance) -> Instance:
        """The same service on the same port and NATS node, as a supervisor would start it."""
        self.instances[instance.service].remove(instance)
        if instance.log is not None:
            instance.log.close()
        again = self.spawn(instance.service, instance.nats_url, http_port=instance.http_port)
        self.instances[instance.service].append(again)
        return again

    def stop_instance(self, instance: Instance, timeout: float = 30.0) -> None:
        """SIGTERM (in-flight work finishes), SIGKILL after `timeout`."""
        if instance.process is not None and instance.process.poll() is None:
            instance.process.terminate()
            try:
                instance.process.wait(timeout)
            except subprocess.TimeoutExpired:
                instance.process.kill()
                instance.process.wait()
        if instance.log is not None:
            instance.log.close()
            instance.log = None

    def start_postgres_again(self, attempts: int = 20) -> None:
        """Start the postmaster again on its port; after a SIGKILL its orphaned backends may
        hold the shared memory a few moments longer."""
        for attempt in range(attempts):
            try:
                self.postgres.start()
                return
            except ServerError:
                if attempt == attempts - 1:
                    raise
                time.sleep(1.0)

    # -- taking it down --

    def stop(self) -> None:
        for group in self.instances.values():
            for instance in group:
                self.stop_instance(instance)
        for node in self.nodes:
            node.stop()
        self.postgres.stop()

    def token(self, actor: Actor) -> str:
        assert self.signing_key is not None
        return mint(actor, self.signing_key)

    def login(self, user: str) -> dict[str, str]:
        return {"user": user, "password": self.nats_passwords[user]}


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _monitor(node: NatsServer, path: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{node.monitor_url}{path}", timeout=2) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _healthy(node: NatsServer) -> bool:
    return node.is_running and _monitor(node, "/healthz") is not None


def _meta_leader(node: NatsServer) -> str:
    info = _monitor(node, "/jsz") or {}
    return str((info.get("meta_cluster") or {}).get("leader") or "")


# --- the department and the load ---------------------------------------------------------------

MANAGER = Actor(id="chaos-m1", role=Role.sales_manager)
SUPERVISOR = Actor(id="chaos-s1", role=Role.supervisor, district="chaos-d1", area="chaos-a1")
REP = Actor(id="chaos-r1", role=Role.rep, district="chaos-d1", area="chaos-a1")
ERP = Actor(id="chaos-erp", role=Role.system)


async def register_department(stack: ChaosStack) -> list[str]:
    """Territory, a supervisor and a rep, approved customers and a catalogue, through the
    services' own commands; returns the customers once the orders service knows them all."""
    customer_url = stack.instances["customer"][0].base_url
    orders_url = stack.instances["orders"][0].base_url
    async with httpx.AsyncClient(base_url=customer_url, timeout=30) as customer:
        for actor, command, body in [
            (MANAGER, "define_division", {"division_id": "chaos-dv1", "name": "Chaos"}),
            (MANAGER, "define_area", {"area_id": "chaos-a1", "name": "Area", "division_id": "chaos-dv1"}),
            (MANAGER, "define_district", {"district_id": "chaos-d1", "name": "District", "area_id": "chaos-a1"}),
            (
                MANAGER,
                "assign_staff",
                {"staff_id": "chaos-s1", "name": "Wang", "role": "supervisor", "district_id": "chaos-d1"},
            ),
            (
                MANAGER,
                "assign_staff",
                {
                    "staff_id": "chaos-r1",
                    "name": "Li",
                    "role": "rep",
                    "district_id": "chaos-d1",
                    "supervisor_id": "chaos-s1",
                },
            ),
        ]:
            await _command(customer, stack, actor, command, body)
        customers = [f"chaos-c{n:02d}" for n in range(1, CUSTOMERS + 1)]
        for n, customer_id in enumerate(customers):
            registration = {
                "customer_id": customer_id,
                "name": f"Outlet {n + 1}",
                "address": f"{n + 1} Century Ave",
                "phone": f"138001380{n:02d}",
                "nature": "company",
                "channel": "retail",
                "location_type": "residential",
            }
            await _command(customer, stack, REP, "register_customer", registration)
            await _command(
                customer, stack, SUPERVISOR, "approve_customer", {"customer_id": customer_id, "status": "active"}
            )
    async with httpx.AsyncClient(base_url=orders_url, timeout=30) as orders:
        for sku, price in SKUS:
            await _command(
                orders,
                stack,
                MANAGER,
                "define_sku",
                {
                    "sku": sku,
                    "name": sku.title(),
                    "brand": "Chaos",
                    "product_group": "beverage",
                    "package": "can",
                    "list_price_fen": price,
                    "floor_price_fen": price * 9 // 10,
                },
            )
        await _wait_until_known(orders, stack, customers[-1])
    return customers


async def _command(client: httpx.AsyncClient, stack: ChaosStack, actor: Actor, name: str, body: dict[str, Any]) -> Any:
    response = await client.post(
        f"/commands/{name}",
        json=body,
        headers={"Authorization": f"Bearer {stack.token(actor)}", "Idempotency-Key": f"setup-{name}-{uuid.uuid4()}"},
    )
    if response.status_code != 200:
        raise ChaosFailed(f"{name} failed: {response.status_code} {response.text[:400]}")
    return response.json()


async def _wait_until_known(orders: httpx.AsyncClient, stack: ChaosStack, customer_id: str) -> None:
    """The orders service learns customers from the customer service's events, in order: once
    it knows the last one registered, it knows them all. Asked with a probe order (not one of the
    load's)."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        order_id = f"probe-{uuid.uuid4().hex[:12]}"
        response = await orders.post(
            "/commands/place_order",
            json={"order_id": order_id, "customer_id": customer_id, "lines": [{"sku": SKUS[0][0], "quantity": 1}]},
            headers={"Authorization": f"Bearer {stack.token(ERP)}"},
        )
        if response.status_code == 200:
            return
        await asyncio.sleep(0.5)
    raise ChaosFailed(f"the orders service did not learn customer {customer_id} in {READY_SECONDS:.0f} s")


@dataclass
class Sent:
    """One command of the load."""

    key: str  # also the order's id
    valid: bool
    phase: int
    stored: bool = False
    seq: int = 0  # its sequence in the ingest stream, once stored


class Load:
    """A steady rate of `place_order` to the ingest subject; each command is published until
    JetStream has stored it (a retry carries the same Nats-Msg-Id, so it is stored once)."""

    def __init__(self, stack: ChaosStack, customers: list[str], rate: float) -> None:
        self.stack = stack
        self.customers = customers
        self.rate = rate
        self.sent: list[Sent] = []
        self.phase = 0
        self.answered: dict[str, float] = {}  # key -> when its result or rejection arrived (core NATS)
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._nc: NATS | None = None
        self._subject = Topology("orders", "").subject("ingest", "place_order")

    async def connect(self) -> None:
        servers = [node.url for node in self.stack.nodes]
        self._nc = await nats.connect(
            servers,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            error_cb=_expected_error,
            **self.stack.login(SYSTEM_USER),
        )
        orders = Topology("orders", "")
        await self._nc.subscribe(orders.subject("result", "place_order"), cb=self._on_answer)
        await self._nc.subscribe(orders.subject("dlq", "rejected"), cb=self._on_answer)

    async def _on_answer(self, msg: Any) -> None:
        key = (msg.headers or {}).get("Idempotency-Key", "")
        if key.startswith(KEY_PREFIX):
            self.answered.setdefault(key, time.monotonic())

    async def run(self) -> None:
        interval = 1.0 / self.rate
        start = time.monotonic()
        for n in itertools.count():
            if self._stopping:
                return
            self._send(n)
            await asyncio.sleep(max(0.0, start + (n + 1) * interval - time.monotonic()))

    def _send(self, n: int) -> None:
        valid = n % INVALID_EVERY != INVALID_EVERY - 1
        order_id = f"{KEY_PREFIX}{uuid.uuid4().hex[:16]}"
        customer = self.customers[n % len(self.customers)] if valid else f"chaos-nobody-{n}"
        lines = [{"sku": SKUS[(n + k) % len(SKUS)][0], "quantity": 1 + (n + k) % 4} for k in range(2)]
        sent = Sent(key=order_id, valid=valid, phase=self.phase)
        self.sent.append(sent)
        body = orjson.dumps({"order_id": order_id, "customer_id": customer, "lines": lines, "source": "system"})
        task = asyncio.get_running_loop().create_task(self._publish(sent, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, sent: Sent, body: bytes) -> None:
        assert self._nc is not None
        js = self._nc.jetstream()
        headers = {
            "Authorization": f"Bearer {self.stack.token(ERP)}",
            "Idempotency-Key": sent.key,
            "Nats-Msg-Id": sent.key,
        }
        deadline = time.monotonic() + RECOVERY_LIMIT_SECONDS
        while time.monotonic() < deadline:
            try:
                ack = await js.publish(self._subject, body, headers=headers, timeout=3)
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError):
                await asyncio.sleep(0.5)
                continue
            sent.stored, sent.seq = True, ack.seq
            return

    async def stop(self) -> None:
        """Stop sending; wait for the commands still being published."""
        self._stopping = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()

    def first_answer(self, since: int) -> float | None:
        """When the first command sent from `since` (an index in `sent`) on was answered."""
        times = [self.answered[s.key] for s in self.sent[since:] if s.key in self.answered]
        return min(times, default=None)


# --- the run -----------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    fault: Fault
    recovery_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    valid_sent: int = 0
    accepted: int = 0
    lost: int = 0
    doubled: int = 0
    wrongly_rejected: int = 0
    not_stored: int = 0
    defects: list[str] = field(default_factory=list)  # what the fault found wrong beyond the counts

    @property
    def clean(self) -> bool:
        return not (self.lost or self.doubled or self.wrongly_rejected or self.defects)


class Chaos:
    """Runs the faults in turn under the load and reconciles what was sent."""

    def __init__(self, stack: ChaosStack, faults: Sequence[Fault], rate: float) -> None:
        self.stack = stack
        self.faults = faults
        self.rate = rate
        self.phases = [PhaseResult(STEADY), *(PhaseResult(fault) for fault in faults)]
        self.load: Load | None = None
        self.findings: list[str] = []  # what the reconciliation found beyond the table
        self.failures: list[str] = []  # the findings that fail the run by themselves

    async def run(self) -> list[PhaseResult]:
        customers = await register_department(self.stack)
        self.load = Load(self.stack, customers, self.rate)
        await self.load.connect()
        sender = asyncio.get_running_loop().create_task(self.load.run())
        try:
            started = time.monotonic()
            await asyncio.sleep(LEAD_SECONDS + DOWN_SECONDS)  # the steady phase
            for index, phase in enumerate(self.phases[1:], start=1):
                if time.monotonic() - started > FAULTS_BUDGET_SECONDS:
                    self._fail(f"{phase.fault.name}: not run, the faults took over {FAULTS_BUDGET_SECONDS:.0f} s")
                    continue
                self.load.phase = index
                _say(f"fault {index}/{len(self.faults)}: {phase.fault.name}")
                await self._inject(phase)
            self.load.phase = len(self.phases)  # past the last fault: not counted anywhere
        finally:
            await self.load.stop()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        _say(f"load stopped after {len(self.load.sent)} commands; waiting for the orders service to drain")
        await self._drain()
        await self._reconcile()
        await self.load.close()
        return self.phases

    async def _inject(self, phase: PhaseResult) -> None:
        assert self.load is not None
        await asyncio.sleep(LEAD_SECONDS)
        await self._settle(phase)
        injected = time.monotonic()
        await asyncio.to_thread(self._break, phase)
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(self._mend, phase)
        back = len(self.load.sent)  # the commands sent from here on were sent once the piece was back
        while time.monotonic() - injected < RECOVERY_LIMIT_SECONDS:
            answered = self.load.first_answer(back)
            if answered is not None:
                phase.recovery_seconds = answered - injected
                break
            await asyncio.sleep(0.1)
        else:
            phase.notes.append(f"not recovered within {RECOVERY_LIMIT_SECONDS:.0f} s")
        await asyncio.sleep(TAIL_SECONDS)

    async def _settle(self, phase: PhaseResult) -> None:
        """Until the commands of the faults before have left the ingest queue, so that this
        fault is charged only with its own (one redelivered after a kill waits the ack wait)."""
        assert self.load is not None
        earlier = max((s.seq for s in self.load.sent if s.phase < self.load.phase), default=0)
        ingest = Topology("orders", "").ingest_stream
        deadline = time.monotonic() + RECOVERY_LIMIT_SECONDS
        async with _connected(self.stack, "orders") as nc:
            js = nc.jetstream()
            while time.monotonic() < deadline:
                with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, TimeoutError):
                    if (await js.stream_info(ingest)).state.first_seq > earlier:
                        return
                await asyncio.sleep(0.25)
        phase.notes.append(f"the commands before it were not all processed in {RECOVERY_LIMIT_SECONDS:.0f} s")

    # -- breaking and mending, in a worker thread (they wait for processes) --

    def _break(self, phase: PhaseResult) -> None:
        fault, stack = phase.fault, self.stack
        if fault.kind == "kill_service":
            for instance in list(stack.instances[fault.target]):
                stack.kill(instance)
        elif fault.kind == "kill_nats":
            for node in stack.nodes:
                node.kill()
        elif fault.kind == "kill_nats_node":
            phase.defects += asyncio.run(unreplicated_streams(stack))
            victim = asyncio.run(_ingest_leader(stack))
            phase.notes.append(f"killed {victim.store_dir.name}, the leader of ORDERS_INGEST")
            victim.kill()
        elif fault.kind == "kill_postmaster":
            stack.postgres.kill()
        elif fault.kind == "pg_stop":
            stack.postgres.stop(mode=fault.target)
        elif fault.kind == "second_instances":
            extra = [
                stack.spawn(name, stack.nodes[(n + 1) % CLUSTER_NODES].url, label="-2")
                for n, name in enumerate(SERVICES)
            ]
            for instance in extra:
                stack.instances[instance.service].append(instance)
            stack.wait_ready(extra)
        else:
            raise ValueError(f"unknown fault {fault.kind}")

    def _mend(self, phase: PhaseResult) -> None:
        fault, stack = phase.fault, self.stack
        if fault.kind == "kill_service":
            restarted = [stack.restart(instance) for instance in list(stack.instances[fault.target])]
            stack.wait_ready(restarted)
        elif fault.kind in ("kill_nats", "kill_nats_node"):
            for node in stack.nodes:
                if not node.is_running:
                    node.start()
            stack.wait_for_cluster()
        elif fault.kind in ("kill_postmaster", "pg_stop"):
            stack.start_postgres_again()
        elif fault.kind == "second_instances":
            for name in SERVICES:
                for instance in stack.instances[name][1:]:
                    stack.stop_instance(instance)
                    stack.instances[name].remove(instance)

    # -- after the load --

    async def _drain(self) -> None:
        """Until the ingest work queue is empty and reporting has taken in every order placed."""
        deadline = time.monotonic() + DRAIN_LIMIT_SECONDS
        t = Topology("orders", "")
        async with _connected(self.stack, "orders") as nc:
            js = nc.jetstream()
            while time.monotonic() < deadline:
                with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, TimeoutError):
                    if (await js.stream_info(t.ingest_stream)).state.messages == 0:
                        break
                await asyncio.sleep(0.5)
            else:
                self._fail(f"the ingest queue was not empty after {DRAIN_LIMIT_SECONDS:.0f} s")
        while time.monotonic() < deadline:
            placed = await _orders_placed(self.stack)
            reported = await _orders_reported(self.stack)
            if reported[0] == len(placed):  # the read model keeps an order once, placed twice or not
                return
            await asyncio.sleep(0.5)

    async def _reconcile(self) -> None:
        assert self.load is not None
        placed = await _orders_placed(self.stack)
        dead = await _dead_letters(self.stack)
        by_key = {sent.key: sent for sent in self.load.sent}
        for sent in self.load.sent:
            if sent.phase >= len(self.phases):
                continue
            phase = self.phases[sent.phase]
            if not sent.stored:
                phase.not_stored += 1
                continue
            times = placed.get(sent.key, 0)
            letters = dead.get(sent.key, [])
            if sent.valid:
                phase.valid_sent += 1
                if times == 1:
                    phase.accepted += 1
                elif times == 0:
                    phase.lost += 1
                else:
                    phase.doubled += 1
                if letters:
                    phase.wrongly_rejected += 1
            else:
                if times:
                    phase.doubled += 1
                if [code for _, code in letters] != ["unknown_customer"]:
                    phase.wrongly_rejected += 1
        outage_letters = Counter(
            (reason, code) for key, letters in dead.items() for reason, code in letters if key in by_key
        )
        outage_letters.pop(("rejected", "unknown_customer"), None)
        for (reason, code), count in sorted(outage_letters.items()):
            self.findings.append(f"{count} dead letters {reason}/{code}: an outage must never become one")
        foreign = [key for key in dead if key not in by_key]
        if foreign:
            self.findings.append(f"{len(foreign)} dead letters of commands the load never sent")
        reported_count, reported_amount = await _orders_reported(self.stack)
        placed_count, placed_amount = await _placed_amount(self.stack)
        if (reported_count, reported_amount) != (placed_count, placed_amount):
            self._fail(
                f"reporting counts {reported_count} orders for {reported_amount} fen; the orders log has "
                f"{placed_count} for {placed_amount} fen"
            )
        else:
            self.findings.append(f"reporting totals match the orders log: {placed_count} orders, {placed_amount} fen")
        results, complete = await _results_reconciled(self.stack, self.load.sent)
        if complete:
            self.findings.append(results)
        else:
            self._fail(results)

    def _fail(self, finding: str) -> None:
        self.findings.append(finding)
        self.failures.append(finding)


async def unreplicated_streams(stack: ChaosStack) -> list[str]:
    """The services' streams kept on fewer than all three nodes: each is away with its node."""
    found = []
    for name in SERVICES:
        async with _connected(stack, name) as nc:
            for info in await nc.jetstream().streams_info():
                replicas = info.config.num_replicas or 1
                if replicas < CLUSTER_NODES:
                    found.append(f"stream {info.config.name} has {replicas} replica(s), not {CLUSTER_NODES}")
    return found


async def _expected_error(error: Exception) -> None:
    """Connection errors are what the run causes; it judges by what arrives, not by them."""


@contextlib.asynccontextmanager
async def _connected(stack: ChaosStack, user: str) -> Any:
    nc = await nats.connect([node.url for node in stack.nodes], error_cb=_expected_error, **stack.login(user))
    try:
        yield nc
    finally:
        await nc.close()


async def _ingest_leader(stack: ChaosStack) -> NatsServer:
    async with _connected(stack, "orders") as nc:
        info = await nc.jetstream().stream_info(Topology("orders", "").ingest_stream)
    leader = info.cluster.leader if info.cluster else None
    for node in stack.nodes:
        if node.store_dir.name == f"nats-{str(leader).removeprefix('n')}":
            return node
    return stack.nodes[0]


async def _fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def _orders_placed(stack: ChaosStack) -> dict[str, int]:
    """How many times each order of the load was placed, from the orders service's own events."""
    rows = await _fetch(
        stack.postgres.dsn("orders"),
        "SELECT data->>'order_id' AS order_id, count(*) AS n FROM events"
        f" WHERE event_type = 'order.placed' AND origin IS NULL AND data->>'order_id' LIKE '{KEY_PREFIX}%'"
        " GROUP BY 1",
    )
    return {row["order_id"]: row["n"] for row in rows}


async def _placed_amount(stack: ChaosStack) -> tuple[int, int]:
    """The orders of the load in the orders service's log (each once) and their amount."""
    rows = await _fetch(
        stack.postgres.dsn("orders"),
        "SELECT count(*) AS n, coalesce(sum(amount), 0) AS amount FROM (SELECT DISTINCT ON (data->>'order_id')"
        " (data->>'amount_fen')::bigint AS amount FROM events"
        f" WHERE event_type = 'order.placed' AND origin IS NULL AND data->>'order_id' LIKE '{KEY_PREFIX}%') o",
    )
    return int(rows[0]["n"]), int(rows[0]["amount"])


async def _orders_reported(stack: ChaosStack) -> tuple[int, int]:
    """The orders of the load in the reporting service's active read model, and their amount."""
    dsn = stack.postgres.dsn("reporting")
    schemas = await _fetch(
        dsn,
        "SELECT p.active_schema FROM projections p JOIN information_schema.tables t"
        " ON t.table_schema = p.active_schema AND t.table_name = 'orders'",
    )
    if not schemas:
        return 0, 0
    schema = schemas[0]["active_schema"]
    rows = await _fetch(
        dsn,
        f'SELECT count(*) AS n, coalesce(sum(amount_fen), 0) AS amount FROM "{schema}".orders'
        f" WHERE order_id LIKE '{KEY_PREFIX}%'",
    )
    return int(rows[0]["n"]), int(rows[0]["amount"])


async def _stream_messages(js: Any, stream: str) -> list[Any]:
    try:
        state = (await js.stream_info(stream)).state
    except nats.js.errors.NotFoundError:
        return []
    out = []
    for seq in range(state.first_seq, state.last_seq + 1):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            out.append(await js.get_msg(stream, seq))
    return out


async def _dead_letters(stack: ChaosStack) -> dict[str, list[tuple[str, str]]]:
    """Each dead-lettered command's idempotency key with (reason, error code) of each letter."""
    out: dict[str, list[tuple[str, str]]] = {}
    async with _connected(stack, OPERATOR_USER) as nc:
        js = nc.jetstream(prefix=api_prefix("orders"))
        for msg in await _stream_messages(js, Topology("orders", "").dlq_stream):
            headers = msg.headers or {}
            key = headers.get("Idempotency-Key") or headers.get("Original-Msg-Id") or ""
            out.setdefault(key, []).append((headers.get("Dlq-Reason", "?"), _error_code(headers.get("Dlq-Error", ""))))
    return out


def _error_code(error: str) -> str:
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        return str(json.loads(error)["error"]["code"])
    return "unstructured"


async def _results_reconciled(stack: ChaosStack, sent: list[Sent]) -> tuple[str, bool]:
    """Each accepted command's result in the orders service's results stream, where it keeps
    one; whether none is missing or doubled."""
    stream = Topology("orders", "").stream("RESULTS")
    async with _connected(stack, "orders") as nc:
        js = nc.jetstream()
        try:
            await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            return f"results: no {stream} stream; results travel on core NATS only and are not reconciled", True
        messages = await _stream_messages(js, stream)
    seen = Counter((m.headers or {}).get("Idempotency-Key") or (m.headers or {}).get("Nats-Msg-Id") for m in messages)
    placed = await _orders_placed(stack)
    keys = [s.key for s in sent if s.key in placed]
    missing = sum(1 for key in keys if seen[key] == 0)
    doubled = sum(1 for key in keys if seen[key] > 1)
    text = f"results in {stream}: {len(keys) - missing} of {len(keys)} accepted commands, {missing} missing, {doubled} twice"
    return text, not (missing or doubled)


# --- the report --------------------------------------------------------------------------------

COLUMNS = ("fault", "valid sent", "accepted", "lost", "doubled", "wrongly rejected", "recovery s")


def table(phases: Sequence[PhaseResult]) -> str:
    """The reconciliation as a Markdown table, a row per fault."""
    rows = [COLUMNS, tuple("---" for _ in COLUMNS)]
    for phase in phases:
        name = phase.fault.name
        recovery = "-" if phase.fault.kind == "none" else _seconds(phase.recovery_seconds)
        rows.append(
            (
                name,
                f"{phase.valid_sent:,}",
                f"{phase.accepted:,}",
                f"{phase.lost:,}",
                f"{phase.doubled:,}",
                f"{phase.wrongly_rejected:,}",
                recovery,
            )
        )
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _seconds(value: float | None) -> str:
    return "not recovered" if value is None else f"{value:.1f}"


def verdict(phases: Sequence[PhaseResult], failures: Sequence[str] = ()) -> list[str]:
    """What fails the run: a loss, duplicate or wrong rejection in any fault,
    a fault not recovered, and the `failures` the reconciliation found (reports off the log,
    results missing, a queue not drained)."""
    failed = [
        f"{p.fault.name}: {p.lost} lost, {p.doubled} doubled, {p.wrongly_rejected} wrongly rejected"
        for p in phases
        if not p.clean
    ]
    failed += [
        f"{p.fault.name}: not recovered" for p in phases if p.fault.kind != "none" and p.recovery_seconds is None
    ]
    return failed + list(failures)


@dataclass
class ChaosReport:
    phases: list[PhaseResult]
    findings: list[str]
    failures: list[str]

    def text(self) -> str:
        """The table, then what else was found, fault by fault."""
        lines = [table(self.phases), ""]
        lines += [f"- {finding}" for finding in self.findings]
        for phase in self.phases:
            lines += [f"- {phase.fault.name}: {note}" for note in phase.notes + phase.defects]
            if phase.not_stored:
                lines.append(
                    f"- {phase.fault.name}: {phase.not_stored} commands never stored by JetStream (not counted)"
                )
        return "\n".join(lines)


def run_chaos(faults: Sequence[Fault], *, rate: float, root: Path | None = None) -> ChaosReport:
    """Start the stack in `root` (a new temporary directory if None, deleted after), run the
    faults under the load, stop everything."""
    owned = root is None
    directory = Path(tempfile.mkdtemp(prefix="sp-chaos-")) if root is None else root.absolute()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o711)  # PostgreSQL may run as another OS account (it refuses root)
    stack = ChaosStack(directory)
    try:
        stack.start()
        chaos = Chaos(stack, faults, rate)
        phases = asyncio.run(chaos.run())
        return ChaosReport(phases, chaos.findings, chaos.failures)
    finally:
        stack.stop()
        if owned:
            shutil.rmtree(directory, ignore_errors=True)


def main(
    small: bool = False, rate: float = 40.0, keep: Path | None = None, on_table: Callable[[str], None] = print
) -> int:
    faults = SMALL_FAULTS if small else FULL_FAULTS
    started = time.monotonic()
    report = run_chaos(faults, rate=rate, root=keep)
    on_table("\n" + report.text())
    failures = verdict(report.phases, report.failures)
    on_table(f"\n{time.monotonic() - started:.0f} s; " + ("FAILED: " + "; ".join(failures) if failures else "passed"))
    return 1 if failures else 0
