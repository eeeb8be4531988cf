"""The deployment files keep the architecture: a database per service, NATS with JetStream,
services isolated from each other's data and subjects."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
import yaml
from nats.errors import Error as NatsError

from salesplatform.devstack.servers import NatsServer, PostgresServer, child_env, postgres_bin_dir

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("customer", "visit", "orders", "reporting")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data["services"]


def _db_host(compose: dict[str, Any], service: str) -> str:
    url = compose[service]["environment"][f"{service.upper()}_DATABASE_URL"]
    return url.rpartition("@")[2].split("/")[0].split(":")[0]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_its_own_database_server(compose: dict[str, Any], service: str) -> None:
    spec = compose[service]
    env = spec["environment"]
    db_host = _db_host(compose, service)
    assert db_host == f"{service}-db"
    assert compose[db_host]["image"].startswith("postgres:")
    assert compose[db_host]["environment"]["POSTGRES_DB"] == service
    assert compose[db_host]["environment"]["POSTGRES_USER"] == service
    assert "pg_isready" in str(compose[db_host]["healthcheck"]["test"])
    assert env["NATS_URL"].startswith("nats://") and env["NATS_URL"].endswith("@nats:4222")
    assert env["AUTH_JWT_SECRET"]
    assert env[f"{service.upper()}_HTTP_PORT"] == "8000"
    assert "/health/ready" in str(spec["healthcheck"]["test"])
    assert spec["build"] == {"context": ".", "dockerfile": f"services/{service}/Dockerfile"}
    assert spec["depends_on"] == {
        db_host: {"condition": "service_healthy"},
        "nats": {"condition": "service_healthy"},
    }


def test_no_two_services_share_a_database(compose: dict[str, Any]) -> None:
    hosts = [_db_host(compose, service) for service in SERVICES]
    assert len(set(hosts)) == len(SERVICES)
    volumes = [tuple(compose[host]["volumes"]) for host in hosts]
    assert len(set(volumes)) == len(SERVICES)
    ports = sorted(compose[service]["ports"][0] for service in SERVICES)
    assert ports == ["8001:8000", "8002:8000", "8003:8000", "8004:8000"]


def test_nats_runs_jetstream_with_a_healthcheck(compose: dict[str, Any]) -> None:
    nats_spec = compose["nats"]
    command = nats_spec["command"]
    assert "-js" in command and command[command.index("-sd") + 1] == "/data"
    assert any(volume.endswith(":/data") for volume in nats_spec["volumes"])
    assert "healthz?js-enabled-only=true" in str(nats_spec["healthcheck"]["test"])
    assert nats_spec["image"].startswith("nats:2.10")


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_runs_the_service_as_non_root(service: str) -> None:
    text = (ROOT / "services" / service / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "COPY shared/" in text and f"COPY services/{service}/" in text
    assert "\nUSER app\n" in text and "HEALTHCHECK" in text
    assert f'CMD ["python", "-m", "{service}_service"]' in text


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_manifest_probes_health(service: str) -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / f"{service}.yaml").read_text()) if d]
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service"}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["envFrom"] == [{"secretRef": {"name": f"{service}-env"}}]


# --- the NATS configuration, enforced by a real server --------------------------------------

NATS_PASSWORDS = {f"{name.upper()}_NATS_PASSWORD": f"{name}-pw" for name in (*SERVICES, "system")}


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sp-deploy-"))
    path.chmod(0o711)  # PostgreSQL's OS account must reach it when tests run as root
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _connect(server: NatsServer, user: str, violations: list[str]) -> nats.NATS:
    async def on_error(error: Exception) -> None:
        violations.append(str(error))

    return await nats.connect(
        f"nats://{user}:{user}-pw@127.0.0.1:{server.port}", error_cb=on_error, allow_reconnect=False
    )


def _violation(kind: str, subject: str, message: str) -> bool:
    return f"permissions violation for {kind}" in message.lower() and subject in message


async def _settle(*clients: nats.NATS) -> None:
    for client in clients:
        await client.flush()
    await asyncio.sleep(0.2)


async def test_nats_config_limits_each_service_to_its_subjects(scratch_dir: Path) -> None:
    with NatsServer(scratch_dir / "nats", config_file=ROOT / "deploy/nats/nats.conf", env=NATS_PASSWORDS) as server:
        violations: list[str] = []
        customer = await _connect(server, "customer", violations)
        visit = await _connect(server, "visit", violations)
        system = await _connect(server, "system", violations)
        try:
            received: list[str] = []

            async def collect(msg: Any) -> None:
                received.append(msg.subject)

            await visit.subscribe("customer.event.>", cb=collect)  # visit consumes customer events
            await _settle(visit)
            await customer.publish("customer.event.customer.registered", b"{}")
            await visit.publish("customer.event.customer.forged", b"{}")  # not visit's to publish
            await _settle(customer, visit)
            assert received == ["customer.event.customer.registered"]
            assert any(_violation("publish", "customer.event.customer.forged", v) for v in violations)

            violations.clear()
            await visit.subscribe("orders.cmd.>")  # commands of another service
            await _settle(visit)
            assert any(_violation("subscription", "orders.cmd.>", v) for v in violations)

            violations.clear()
            commands: list[str] = []

            async def on_command(msg: Any) -> None:
                commands.append(msg.subject)
                await msg.respond(b"ok")

            await customer.subscribe("customer.cmd.>", cb=on_command)
            await _settle(customer)
            reply = await system.request("customer.cmd.register_customer", b"{}", timeout=2)
            assert reply.data == b"ok" and commands == ["customer.cmd.register_customer"]
            await system.publish("customer.event.customer.registered", b"{}")  # outsiders send no events
            await _settle(system)
            assert any(_violation("publish", "customer.event.customer.registered", v) for v in violations)
        finally:
            for client in (customer, visit, system):
                await client.close()

        with pytest.raises(NatsError):
            await nats.connect(
                f"nats://customer:wrong@127.0.0.1:{server.port}",
                allow_reconnect=False,
                max_reconnect_attempts=0,
                connect_timeout=2,
            )


# --- the shared-server Postgres init script, run by psql --------------------------------------


async def test_postgres_init_script_isolates_services(scratch_dir: Path) -> None:
    with PostgresServer(scratch_dir / "pg", fsync_off=True) as server:
        variables = [arg for name in SERVICES for arg in ("-v", f"{name}_password={name}-pw")]
        await asyncio.to_thread(
            subprocess.run,
            [
                str(postgres_bin_dir() / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                *variables,
                "-f",
                str(ROOT / "deploy/postgres/init.sql"),
                server.admin_dsn,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=child_env(),
        )
        for name in SERVICES:
            conn = await asyncpg.connect(server.dsn(name, user=name, password=f"{name}-pw"))
            try:
                await conn.execute("CREATE TABLE mine (id int)")
            finally:
                await conn.close()
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await asyncpg.connect(server.dsn("orders", user="visit", password="visit-pw"))
        admin = await asyncpg.connect(server.dsn("reporting"))
        try:
            assert not await admin.fetchval("SELECT has_schema_privilege('customer', 'public', 'CREATE')")
        finally:
            await admin.close()
