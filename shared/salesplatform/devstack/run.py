"""`make run`: the whole system on this machine, with nothing installed but Python.

Starts PostgreSQL and NATS under the run directory (default `.run/`), gives each service its own
database and login role, starts the four services and the console as separate processes, waits
until each is ready and prints where everything is. NATS runs the production layout of accounts
and users (`salesplatform.nats_layout`), each service connecting as its own user (the console, a
client of the others, as the outside systems' user); tokens are signed with the key pair made on
the first run in `.run/auth/` (services read only its public key set). Ctrl-C or SIGTERM stops
it all in order: services first (so they finish in-flight work against live servers), then
NATS, then PostgreSQL. Data and credentials stay in the run directory, so the next run
continues where this one stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import structlog

from salesplatform.auth import JWKS_FILE, SIGNING_KEY_FILE, init_keys
from salesplatform.devstack.servers import (
    LOOPBACK,
    NatsServer,
    PostgresServer,
    ServerError,
    child_env,
    create_service_database,
    die_with_parent,
    free_port,
    tail,
)
from salesplatform.nats_layout import PRODUCTION, SYSTEM_USER, server_config

SERVICES: tuple[str, ...] = ("customer", "visit", "orders", "reporting", "console")
# The console keeps no data: it reads the others' APIs and needs no database.
DATABASE_SERVICES: tuple[str, ...] = ("customer", "visit", "orders", "reporting")
STOP_GRACE_SECONDS = 10.0
MINT_HINT = ".venv/bin/python -m salesplatform.auth mint --role sales_manager --id m1"


class StackFailed(Exception):
    """Something the stack needs failed; the message says what, for the person at the terminal."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while starting up."""


@dataclass
class ServiceProcess:
    """One running service: its process, address, database and log."""

    name: str
    http_port: int
    database_url: str | None
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_handle: TextIO | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def load_secrets(path: Path) -> dict[str, Any]:
    """Database and NATS passwords: made once, then reused so data stays reachable. (Tokens
    are signed with the key pair in `auth/`; no shared secret is kept.)"""
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    changed = data.pop("AUTH_JWT_SECRET", None) is not None  # from before tokens were signed with key pairs
    for key, names in (("database_passwords", DATABASE_SERVICES), ("nats_passwords", PRODUCTION.users)):
        passwords = data.setdefault(key, {})
        for name in names:
            if not passwords.get(name):
                passwords[name] = secrets.token_urlsafe(24)
                changed = True
    if changed:
        _write_private(path, data)
    return data


def write_nats_config(path: Path, passwords: dict[str, str]) -> Path:
    """The production layout of accounts and users with this run's passwords (owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(server_config(PRODUCTION, passwords, comment="NATS of `make run`: made at each start."))
    return path


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by the owner only (it holds credentials)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    tmp.replace(path)


def _say(message: str = "") -> None:
    print(message, flush=True)


class Stack:
    """The orchestrator: starts, watches and stops the servers and the services."""

    def __init__(self, root: Path, ready_timeout: float = 60.0) -> None:
        self.root = root.absolute()
        self.ready_timeout = ready_timeout
        self.logs_dir = self.root / "logs"
        self.stack_file = self.root / "stack.json"
        self.secrets_file = self.root / "secrets.json"
        self.keys_dir = self.root / "auth"
        self.nats_config = self.root / "nats" / "nats.conf"
        self.postgres = PostgresServer(self.root / "postgres")
        self.nats = NatsServer(self.root / "nats", config_file=self.nats_config)
        self.services: list[ServiceProcess] = []
        self._signal: int | None = None

    # -- signals --

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._signal is None:
            _say(f"\n{signal.Signals(signum).name} received: stopping")
        self._signal = signum

    def _check_interrupt(self) -> None:
        if self._signal is not None:
            raise Interrupted

    # -- the whole run --

    def run(self) -> int:
        """Start everything, serve until a signal or a failure, stop everything; the exit code."""
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)
        self._refuse_second_instance()
        code = 0
        try:
            self._start()
            self._write_stack_file()
            self._print_addresses()
            code = self._watch()
        except Interrupted:
            code = 0
        except (StackFailed, ServerError) as error:
            _say(f"\nFAILED: {error}")
            code = 1
        finally:
            self._shutdown()
        return code

    def _refuse_second_instance(self) -> None:
        try:
            pid = int(json.loads(self.stack_file.read_text())["pid"])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            return
        if pid != os.getpid() and b"salesplatform.devstack" in cmdline:
            raise SystemExit(f"the stack in {self.root} is already running (pid {pid}); stop it first")

    def _start(self) -> None:
        _say(f"Starting the sales platform in {self.root}")
        data = load_secrets(self.secrets_file)
        key = init_keys(self.keys_dir)
        _say(f"  tokens     signed with key {key.kid}; public key set {self._rel(self.keys_dir / JWKS_FILE)}")
        self.postgres.start()
        self._check_interrupt()
        _say(f"  postgres   {self.postgres.admin_dsn}")
        write_nats_config(self.nats_config, data["nats_passwords"])
        self.nats.start()
        self._check_interrupt()
        _say(f"  nats       {self.nats.url}")
        database_urls = asyncio.run(self._create_databases(data["database_passwords"]))
        self._check_interrupt()
        for name in SERVICES:
            self.services.append(
                ServiceProcess(name, free_port(), database_urls.get(name), self.logs_dir / f"{name}.log")
            )
        for service in self.services:
            self._spawn(service, data["nats_passwords"])
        self._wait_ready()

    async def _create_databases(self, passwords: dict[str, str]) -> dict[str, str]:
        return {
            name: await create_service_database(self.postgres.admin_dsn, name, passwords[name])
            for name in DATABASE_SERVICES
        }

    def _spawn(self, service: ServiceProcess, nats_passwords: dict[str, str]) -> None:
        prefix = service.name.upper()
        # The console is a client of the other services: on NATS it is an outside system.
        nats_user = SYSTEM_USER if service.name == "console" else service.name
        env = child_env(
            {
                **({f"{prefix}_DATABASE_URL": service.database_url} if service.database_url else {}),
                **self._console_settings(service),
                f"{prefix}_HTTP_HOST": LOOPBACK,
                f"{prefix}_HTTP_PORT": str(service.http_port),
                "NATS_URL": self.nats.url,
                "NATS_USER": nats_user,
                "NATS_PASSWORD": nats_passwords[nats_user],
                "AUTH_JWKS_FILE": str(self.keys_dir / JWKS_FILE),
                "LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        handle = service.log_path.open("a")
        handle.write(f"--- {datetime.now(UTC).isoformat()} started by make run on port {service.http_port} ---\n")
        handle.flush()
        service.log_handle = handle
        # Its own session: Ctrl-C reaches only this orchestrator, which stops services in order.
        service.process = subprocess.Popen(
            [sys.executable, "-m", f"{service.name}_service"],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )

    def _console_settings(self, service: ServiceProcess) -> dict[str, str]:
        """The console reads the other services' APIs; locally it signs viewers in itself."""
        if service.name != "console":
            return {}
        return {
            **{f"CONSOLE_{s.name.upper()}_URL": s.base_url for s in self.services if s.name != "console"},
            "CONSOLE_LOCAL_LOGIN": "true",
            # Its local sign-in mints tokens: the one process here that holds the private key.
            "AUTH_SIGNING_KEY_FILE": str(self.keys_dir / SIGNING_KEY_FILE),
        }

    def _wait_ready(self) -> None:
        pending = list(self.services)
        deadline = time.monotonic() + self.ready_timeout
        while pending:
            self._check_interrupt()
            for service in list(pending):
                if not service.alive():
                    code = service.process.returncode if service.process else None
                    raise StackFailed(self._failure(service, f"exited with code {code} while starting"))
                if _is_ready(service.base_url):
                    _say(f"  {service.name:<10} ready at {service.base_url}")
                    pending.remove(service)
            if pending and time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                raise StackFailed(
                    "\n".join(
                        [f"not ready after {self.ready_timeout:.0f}s: {names}"]
                        + [self._failure(s, "is not ready") for s in pending]
                    )
                )
            time.sleep(0.25)

    def _failure(self, service: ServiceProcess, what: str) -> str:
        return f"service {service.name} {what}; end of {service.log_path}:\n{tail(service.log_path, 30)}"

    def _watch(self) -> int:
        """Serve until a signal (exit 0) or until a service or NATS dies (exit 1)."""
        while self._signal is None:
            for service in self.services:
                if not service.alive():
                    code = service.process.returncode if service.process else None
                    _say("\n" + self._failure(service, f"died (exit code {code})"))
                    return 1
            if not self.nats.is_running:
                _say(f"\nNATS died; end of {self.nats.log_file}:\n{tail(self.nats.log_file, 30)}")
                return 1
            time.sleep(0.5)
        return 0

    # -- output --

    def _write_stack_file(self) -> None:
        """Addresses for other programs (demo, bench); it holds DSNs, so it is owner-only."""
        _write_private(
            self.stack_file,
            {
                "pid": os.getpid(),
                "started_at": datetime.now(UTC).isoformat(),
                "root": str(self.root),
                "nats_url": self.nats.url,
                "nats_monitor_url": self.nats.monitor_url,
                "postgres_admin_dsn": self.postgres.admin_dsn,
                "secrets_file": str(self.secrets_file),
                "jwks_file": str(self.keys_dir / JWKS_FILE),
                "signing_key_file": str(self.keys_dir / SIGNING_KEY_FILE),
                "services": {
                    s.name: {
                        "url": s.base_url,
                        "docs": f"{s.base_url}/docs" if s.name in DATABASE_SERVICES else None,
                        "database_url": s.database_url,
                        "log": str(s.log_path),
                        "pid": s.process.pid if s.process else None,
                    }
                    for s in self.services
                },
            },
        )

    def _print_addresses(self) -> None:
        rows = [
            ("NATS", self.nats.url, f"monitoring {self.nats.monitor_url}"),
            ("PostgreSQL (admin)", self.postgres.admin_dsn, f"log {self._rel(self.postgres.log_file)}"),
        ]
        rows += [
            (
                s.name,
                s.base_url,
                (f"docs {s.base_url}/docs  " if s.name in DATABASE_SERVICES else "") + f"log {self._rel(s.log_path)}",
            )
            for s in self.services
        ]
        width = max(len(r[0]) for r in rows)
        url_width = max(len(r[1]) for r in rows)
        _say("\nThe sales platform is running. Ctrl-C stops it; data stays in " + self._rel(self.root) + "\n")
        for label, url, extra in rows:
            _say(f"  {label:<{width}}  {url:<{url_width}}  {extra}")
        console = next((s for s in self.services if s.name == "console"), None)
        if console is not None:
            _say(f"\n  the sales console:      {console.base_url}  (sign in as any staff member)")
        _say(f"  addresses for programs: {self._rel(self.stack_file)}")
        _say(f"  mint a token:           {MINT_HINT}")
        _say(
            '  call a service:         curl -H "Authorization: Bearer $TOKEN" '
            f"{self.services[0].base_url}/health/ready\n"
        )

    @staticmethod
    def _rel(path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    # -- shutdown --

    def _shutdown(self) -> None:
        """Services (SIGTERM, then SIGKILL after the grace period), then NATS, then PostgreSQL."""
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        running = [s for s in self.services if s.alive()]
        if running:
            _say("Stopping services: " + ", ".join(s.name for s in running))
        for service in running:
            assert service.process is not None
            service.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for service in running:
            assert service.process is not None
            try:
                service.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"  {service.name} did not stop within {STOP_GRACE_SECONDS:.0f}s: killing it")
                service.process.kill()
                service.process.wait()
        for service in self.services:
            if service.log_handle is not None:
                service.log_handle.close()
        if self.nats.is_running or self.nats.process is not None:
            _say("Stopping NATS")
        self.nats.stop()
        if self.postgres.is_running:
            _say("Stopping PostgreSQL")
        self.postgres.stop()
        try:
            if json.loads(self.stack_file.read_text()).get("pid") == os.getpid():
                self.stack_file.unlink()
        except (OSError, ValueError):
            pass
        _say("Stopped.")


def _is_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salesplatform.devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start PostgreSQL, NATS, the four services and the console (make run)")
    run.add_argument("--root", type=Path, default=Path(".run"), help="where data, logs and secrets live")
    run.add_argument("--ready-timeout", type=float, default=60.0, help="seconds each service may take to be ready")
    args = parser.parse_args(argv)
    # The table printed here is the user-facing output; library events only when they warn.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.command == "run":
        return Stack(args.root, ready_timeout=args.ready_timeout).run()
    parser.error(f"unknown command {args.command}")
    return 2
