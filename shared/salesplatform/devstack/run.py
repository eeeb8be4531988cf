"""`make run`: the whole system on this machine, with nothing installed but Python.

Starts PostgreSQL and NATS under the run directory (default `.run/`), gives each service its own
database and login role, starts the four services and the console as separate processes, waits
until each is ready and prints where everything is. It then supervises them: a service (or NATS)
that dies is started again after a pause that doubles with each crash in a row (1 s up to 30 s;
one that stayed up a minute starts over at 1 s), and the others keep running. Every address is
recorded in `stack.json`, which stays after a stop: the next run takes the same ports again when
they are free, so clients holding the old URLs reconnect. NATS runs the production layout of accounts
and users (`salesplatform.nats_layout`), each service connecting as its own user (the console, a
client of the others, as the outside systems' user); tokens are signed with the key pair made on
the first run in `.run/auth/` (services read only its public key set). Ctrl-C or SIGTERM stops
it all in order: services first (so they finish in-flight work against live servers), then
NATS, then PostgreSQL. Data, credentials and ports stay in the run directory, so the next run
continues where this one stopped.

`python -m salesplatform.devstack servers` (`make servers`) starts only PostgreSQL, with each
service's empty database and role, and NATS, with the accounts and users: the empty servers a
restore goes into (`salesctl restore`). `make run` on the same directory then starts the
services on what was restored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import socket
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
# A process that dies is started again after a pause that doubles with each crash in a row, so
# one that cannot start (a broken migration, a port taken) does not spin; one that stayed up
# RESTART_STABLE_SECONDS counts as healthy again and its next crash waits the first pause.
RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
RESTART_STABLE_SECONDS = 60.0
MINT_HINT = ".venv/bin/python -m salesplatform.auth mint --role sales_manager --id m1"


class StackFailed(Exception):
    """Something the stack needs failed; the message says what, for the person at the terminal."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while starting up."""


@dataclass
class Restarts:
    """What the supervisor remembers of one process: its crashes in a row and when it is due
    to start again. Times are `time.monotonic()` seconds."""

    crashes: int = 0
    up_since: float = 0.0
    due_at: float | None = None

    def started(self, now: float) -> None:
        self.up_since = now
        self.due_at = None

    def died(self, now: float) -> float:
        """Count a crash and schedule the next start; returns the pause in seconds."""
        if now - self.up_since >= RESTART_STABLE_SECONDS:
            self.crashes = 0
        self.crashes += 1
        delay: float = min(RESTART_MAX_DELAY, RESTART_FIRST_DELAY * 2.0 ** (self.crashes - 1))
        self.due_at = now + delay
        return delay

    @property
    def waiting(self) -> bool:
        return self.due_at is not None

    def due(self, now: float) -> bool:
        return self.due_at is not None and now >= self.due_at


@dataclass
class ServiceProcess:
    """One running service: its process, address, database and log."""

    name: str
    http_port: int
    database_url: str | None
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_handle: TextIO | None = field(default=None, repr=False)
    restarts: Restarts = field(default_factory=Restarts)

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


def recorded_ports(stack_file: Path) -> dict[str, int]:
    """The ports an earlier run of this directory used (`stack.json`, kept after a stop)."""
    try:
        ports = json.loads(stack_file.read_text()).get("ports", {})
    except (OSError, ValueError):
        return {}
    return {name: port for name, port in ports.items() if isinstance(port, int)} if isinstance(ports, dict) else {}


def port_if_free(port: int | None) -> int:
    """`port` if a server could listen on it on loopback now, else a port the OS reports free.
    Like the servers, the probe reuses an address still in TIME_WAIT from an earlier run."""
    if port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                pass
            else:
                return port
    return free_port()


def service_environment(
    name: str,
    *,
    http_port: int,
    database_url: str | None,
    nats_url: str,
    nats_user: str,
    nats_password: str,
    jwks_file: Path,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The settings of service `name` run on this machine (`python -m <name>_service`)."""
    prefix = name.upper()
    return child_env(
        {
            **({f"{prefix}_DATABASE_URL": database_url} if database_url else {}),
            **(extra or {}),
            f"{prefix}_HTTP_HOST": LOOPBACK,
            f"{prefix}_HTTP_PORT": str(http_port),
            "NATS_URL": nats_url,
            "NATS_USER": nats_user,
            "NATS_PASSWORD": nats_password,
            "AUTH_JWKS_FILE": str(jwks_file),
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )


def start_service_process(name: str, env: dict[str, str], log: TextIO, why: str) -> subprocess.Popen[bytes]:
    """Start `python -m <name>_service`, its output appended to `log` after a line saying `why`."""
    log.write(f"--- {datetime.now(UTC).isoformat()} {why} ---\n")
    log.flush()
    # Its own session: Ctrl-C reaches only the process that started it, which stops it in order.
    return subprocess.Popen(
        [sys.executable, "-m", f"{name}_service"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        preexec_fn=die_with_parent(),
    )


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

    def __init__(self, root: Path, ready_timeout: float = 60.0, *, services: tuple[str, ...] = SERVICES) -> None:
        self.root = root.absolute()
        # What runs besides the servers: every service, or none (the servers a restore goes into).
        self.service_names = services
        self.ready_timeout = ready_timeout
        self.logs_dir = self.root / "logs"
        self.stack_file = self.root / "stack.json"
        self.secrets_file = self.root / "secrets.json"
        self.keys_dir = self.root / "auth"
        self.nats_config = self.root / "nats" / "nats.conf"
        self.postgres = PostgresServer(self.root / "postgres")
        self.nats = NatsServer(self.root / "nats", config_file=self.nats_config)
        self.ports: dict[str, int] = {}
        self.nats_restarts = Restarts()
        self.services: list[ServiceProcess] = []
        self.database_urls: dict[str, str] = {}
        self._nats_passwords: dict[str, str] = {}
        self._started_at = ""
        self._signal: int | None = None

    def _port(self, name: str) -> int:
        """The port `name` had in the last run if it is free, else a new one (said so)."""
        recorded = self.ports.get(name)
        port = port_if_free(recorded)
        if recorded and port != recorded:
            _say(f"  the port {name} had, {recorded}, is taken now: it gets {port}")
        return port

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
        self._started_at = datetime.now(UTC).isoformat()
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
        except (OSError, ValueError, KeyError, TypeError):
            return  # never started, or stopped (its pid is null)
        if pid != os.getpid() and b"salesplatform.devstack" in cmdline:
            raise SystemExit(f"the stack in {self.root} is already running (pid {pid}); stop it first")

    def _start(self) -> None:
        what = "the sales platform" if self.service_names else "PostgreSQL and NATS, without services,"
        _say(f"Starting {what} in {self.root}")
        data = load_secrets(self.secrets_file)
        key = init_keys(self.keys_dir)
        _say(f"  tokens     signed with key {key.kid}; public key set {self._rel(self.keys_dir / JWKS_FILE)}")
        # The ports of the last run of this directory, where they are free (see _port).
        self.ports = recorded_ports(self.stack_file)
        self.postgres = PostgresServer(self.root / "postgres", port=self._port("postgres"))
        self.nats = NatsServer(
            self.root / "nats",
            port=self._port("nats"),
            monitor_port=self._port("nats_monitor"),
            config_file=self.nats_config,
        )
        self.postgres.start()
        self._check_interrupt()
        _say(f"  postgres   {self.postgres.admin_dsn}")
        write_nats_config(self.nats_config, data["nats_passwords"])
        self.nats.start()
        self.nats_restarts.started(time.monotonic())
        self._check_interrupt()
        _say(f"  nats       {self.nats.url}")
        self.database_urls = asyncio.run(self._create_databases(data["database_passwords"]))
        self._check_interrupt()
        for name in self.service_names:
            self.services.append(
                ServiceProcess(name, self._port(name), self.database_urls.get(name), self.logs_dir / f"{name}.log")
            )
        self._nats_passwords = data["nats_passwords"]
        for service in self.services:
            self._spawn(service)
        self._wait_ready()

    async def _create_databases(self, passwords: dict[str, str]) -> dict[str, str]:
        return {
            name: await create_service_database(self.postgres.admin_dsn, name, passwords[name])
            for name in DATABASE_SERVICES
        }

    def _spawn(self, service: ServiceProcess, why: str = "started by make run") -> None:
        # The console is a client of the other services: on NATS it is an outside system.
        nats_user = SYSTEM_USER if service.name == "console" else service.name
        env = service_environment(
            service.name,
            http_port=service.http_port,
            database_url=service.database_url,
            nats_url=self.nats.url,
            nats_user=nats_user,
            nats_password=self._nats_passwords[nats_user],
            jwks_file=self.keys_dir / JWKS_FILE,
            extra=self._console_settings(service),
        )
        if service.log_handle is not None:
            service.log_handle.close()
        service.log_handle = service.log_path.open("a")
        service.process = start_service_process(
            service.name, env, service.log_handle, f"{why} on port {service.http_port}"
        )
        service.restarts.started(time.monotonic())

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
        """Serve until a signal; what dies is started again in its time, the rest keep running."""
        while self._signal is None:
            now = time.monotonic()
            self._supervise_nats(now)
            for service in self.services:
                self._supervise(service, now)
            time.sleep(0.5)
        return 0

    def _supervise(self, service: ServiceProcess, now: float) -> None:
        if service.alive():
            return
        restarts = service.restarts
        if not restarts.waiting:
            code = service.process.returncode if service.process else None
            delay = restarts.died(now)
            _say(
                f"\n{_clock()} service {service.name} died (exit code {code}); starting it again in "
                f"{delay:.0f} s (crash {restarts.crashes} in a row); end of {service.log_path}:\n"
                f"{tail(service.log_path, 10)}"
            )
        elif restarts.due(now):
            code = service.process.returncode if service.process else None
            self._spawn(service, why=f"started again by make run after exit code {code}")
            assert service.process is not None
            _say(f"{_clock()} service {service.name} started again (pid {service.process.pid})")
            self._write_stack_file()

    def _supervise_nats(self, now: float) -> None:
        if self.nats.is_running:
            return
        if not self.nats_restarts.waiting:
            process = self.nats.process
            code = process.returncode if process is not None else None
            delay = self.nats_restarts.died(now)
            _say(
                f"\n{_clock()} NATS died (exit code {code}); starting it again in {delay:.0f} s "
                f"(crash {self.nats_restarts.crashes} in a row); end of {self.nats.log_file}:\n"
                f"{tail(self.nats.log_file, 10)}"
            )
        elif self.nats_restarts.due(now):
            try:
                self.nats.start()  # on the ports it had: the services reconnect by themselves
            except ServerError as error:
                self.nats_restarts.up_since = time.monotonic()
                delay = self.nats_restarts.died(time.monotonic())
                _say(f"{_clock()} NATS did not start again ({error}); next try in {delay:.0f} s")
                return
            self.nats_restarts.started(time.monotonic())
            _say(f"{_clock()} NATS started again at {self.nats.url}")
            self._write_stack_file()

    # -- output --

    def _write_stack_file(self) -> None:
        """Addresses for other programs (demo, bench); it holds DSNs, so it is owner-only."""
        _write_private(
            self.stack_file,
            {
                "pid": os.getpid(),
                "started_at": self._started_at,
                "root": str(self.root),
                "nats_url": self.nats.url,
                "nats_monitor_url": self.nats.monitor_url,
                "postgres_admin_dsn": self.postgres.admin_dsn,
                "secrets_file": str(self.secrets_file),
                # Each service's database, whether the service runs or not (backup, restore).
                "databases": self.database_urls,
                "jwks_file": str(self.keys_dir / JWKS_FILE),
                "signing_key_file": str(self.keys_dir / SIGNING_KEY_FILE),
                # What the next run of this directory takes again when free (see _port); the
                # ports of services not running now are kept for the next run that starts them.
                "ports": {
                    **self.ports,
                    "postgres": self.postgres.port,
                    "nats": self.nats.port,
                    "nats_monitor": self.nats.monitor_port,
                    **{s.name: s.http_port for s in self.services},
                },
                "services": {
                    s.name: {
                        "url": s.base_url,
                        "docs": f"{s.base_url}/docs" if s.name in DATABASE_SERVICES else None,
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
        running = "The sales platform is running" if self.services else "PostgreSQL and NATS are running, no service"
        _say(f"\n{running}. Ctrl-C stops it; data stays in {self._rel(self.root)}\n")
        for label, url, extra in rows:
            _say(f"  {label:<{width}}  {url:<{url_width}}  {extra}")
        if not self.services:
            stack = self._rel(self.stack_file)
            _say(f"\n  restore a backup into them: salesctl --stack {stack} restore <backup directory>")
            _say("  then stop them (Ctrl-C) and start everything on what was restored: make run\n")
            return
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
        self._mark_stopped()
        _say("Stopped.")

    def _mark_stopped(self) -> None:
        """Keep `stack.json` (the next run takes its ports again) with no running pid in it."""
        try:
            data = json.loads(self.stack_file.read_text())
        except (OSError, ValueError):
            return
        if data.get("pid") != os.getpid():
            return
        data["pid"] = None
        data["stopped_at"] = datetime.now(UTC).isoformat()
        for service in data.get("services", {}).values():
            service["pid"] = None
        _write_private(self.stack_file, data)


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


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
    servers = commands.add_parser(
        "servers", help="start PostgreSQL and NATS only, for a restore before the services start (make servers)"
    )
    servers.add_argument("--root", type=Path, default=Path(".run"), help="where data, logs and secrets live")
    chaos = commands.add_parser("chaos", help="the fault suite: faults under a steady load, then a reconciliation")
    chaos.add_argument("--small", action="store_true", help="three faults instead of all (the test suite's run)")
    chaos.add_argument("--rate", type=float, default=40.0, help="commands sent per second")
    chaos.add_argument("--keep", type=Path, default=None, help="run in this directory and keep it (logs, data)")
    args = parser.parse_args(argv)
    # The table printed here is the user-facing output; library events only when they warn.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.command == "run":
        return Stack(args.root, ready_timeout=args.ready_timeout).run()
    if args.command == "servers":
        return Stack(args.root, services=()).run()
    if args.command == "chaos":
        from salesplatform.devstack import chaos as fault_suite  # it imports this module

        return fault_suite.main(small=args.small, rate=args.rate, keep=args.keep)
    parser.error(f"unknown command {args.command}")
    return 2
