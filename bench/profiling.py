"""Where a service process spends its time: py-spy samples it from outside while a figure's load
runs, and the collapsed stacks are summed up by function (self time) and by part of the stack
(the web server, validation, the database driver, NATS, the platform, the service's own code).

py-spy needs no change to the process it samples; where it cannot attach (no ptrace rights),
the summary says so and the run goes on.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Which part of the system a source file belongs to, first match wins. py-spy names files
# relative to their import root ("asyncpg/connection.py", "asyncio/events.py").
PARTS: tuple[tuple[str, str], ...] = (
    ("/salesplatform/", "platform (salesplatform)"),
    ("_service/", "service code"),
    ("/asyncpg/", "asyncpg"),
    ("/nats/", "nats-py"),
    ("/pydantic", "pydantic"),
    ("/fastapi/", "fastapi"),
    ("/starlette/", "starlette"),
    ("/uvicorn/", "uvicorn"),
    ("/h11/", "h11 (HTTP parsing)"),
    ("/httptools/", "httptools (HTTP parsing)"),
    ("/structlog/", "logging"),
    ("/logging/", "logging"),
    ("/orjson", "orjson"),
    ("/jwt/", "PyJWT"),
    ("/cryptography/", "cryptography"),
    ("/asyncio/", "asyncio event loop"),
    ("/selectors.py", "asyncio event loop"),
    ("/json/", "stdlib json"),
    ("/uuid.py", "uuid"),
    ("/anyio/", "anyio"),
)
# A sample whose innermost frame is the event loop's poll is a process waiting for work.
IDLE_LEAVES = {"EpollSelector.select", "select", "KqueueSelector.select"}

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def pyspy_binary() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    if candidate.exists():
        return str(candidate)
    return shutil.which("py-spy")


def part_of(filename: str) -> str:
    path = "/" + filename.lstrip("/")
    for needle, name in PARTS:
        if needle in path:
            return name
    return "other"


@dataclass
class Profile:
    """Sampled stacks of one process during one load."""

    label: str
    figure: str = ""
    rate: int = 100  # samples per second
    samples: int = 0  # busy samples: the process was running Python or a system call
    idle: int = 0  # samples waiting in the event loop's poll
    self_time: Counter[str] = field(default_factory=Counter)
    parts_self: Counter[str] = field(default_factory=Counter)
    parts_inclusive: Counter[str] = field(default_factory=Counter)
    ours_inclusive: Counter[str] = field(default_factory=Counter)  # platform and service functions
    error: str | None = None

    @classmethod
    def from_collapsed(cls, label: str, text: str) -> Profile:
        """Parse py-spy's raw (collapsed) output: `frame;frame;frame count` per line."""
        profile = cls(label)
        for line in text.splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = []
            for raw in stack.split(";"):
                match = _FRAME.match(raw.strip())
                frames.append((match["func"], match["file"]) if match else (raw.strip(), ""))
            if not frames:
                continue
            func, filename = frames[-1]
            if func in IDLE_LEAVES and filename.endswith("selectors.py"):
                profile.idle += count
                continue
            profile.samples += count
            profile.self_time[f"{func} ({_short(filename)})"] += count
            profile.parts_self[part_of(filename)] += count
            for part in {part_of(f) for _, f in frames}:
                profile.parts_inclusive[part] += count
            for name in {f"{fn} ({_short(f)})" for fn, f in frames if _is_ours(f) and fn not in _ENTRY_POINTS}:
                profile.ours_inclusive[name] += count
        return profile

    def summary(self, top: int = 12) -> dict[str, Any]:
        if self.error or not self.samples:
            return {"label": self.label, "figure": self.figure, "error": self.error or "no samples"}

        def share(counter: Counter[str]) -> list[tuple[str, float]]:
            return [(name, round(100 * n / self.samples, 1)) for name, n in counter.most_common(top)]

        return {
            "label": self.label,
            "figure": self.figure,
            "rate": self.rate,
            "samples": self.samples,
            "idle_samples": self.idle,
            "self_by_part_percent": share(self.parts_self),
            "inclusive_by_part_percent": share(self.parts_inclusive),
            "top_self_functions_percent": share(self.self_time),
            "top_own_functions_inclusive_percent": share(self.ours_inclusive),
        }


# The process's own start-up frames are on every stack and say nothing.
_ENTRY_POINTS = {"<module>", "main"}


def _is_ours(filename: str) -> bool:
    """Code of this project: the platform library or a service."""
    path = "/" + filename.lstrip("/")
    return "/salesplatform/" in path or "_service/" in path


def _short(filename: str) -> str:
    """A file name without the long site-packages prefix."""
    for marker in ("site-packages/", "/shared/", "/services/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


class Sampler:
    """py-spy recording one process until `stop()`."""

    def __init__(self, pid: int, label: str, out_dir: Path, rate: int = 100, figure: str = "") -> None:
        self.figure = figure
        self.pid = pid
        self.label = label
        self.output = out_dir / f"profile-{label}-{pid}.txt"
        self.rate = rate
        self.process: subprocess.Popen[bytes] | None = None
        self.error: str | None = None

    def start(self) -> None:
        binary = pyspy_binary()
        if binary is None:
            self.error = "py-spy is not installed (pip install -r bench/requirements.txt)"
            return
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--output",
                str(self.output),
                "--nonblocking",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> Profile:
        profile = self._collect()
        profile.figure, profile.rate = self.figure, self.rate
        return profile

    def _collect(self) -> Profile:
        if self.process is None:
            return Profile(self.label, error=self.error)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            out, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        try:
            text = self.output.read_text()
        except OSError:
            return Profile(self.label, error="py-spy wrote nothing: " + out.decode(errors="replace")[-300:])
        return Profile.from_collapsed(self.label, text)


@contextlib.contextmanager
def sampling(
    pid: int | None, label: str, out_dir: Path, results: list[Profile], figure: str = "", rate: int = 100
) -> Iterator[None]:
    """Profile `pid` for the duration of the block and append the result to `results`."""
    if pid is None:
        yield
        return
    sampler = Sampler(pid, label, out_dir, rate=rate, figure=figure)
    sampler.start()
    try:
        yield
    finally:
        results.append(sampler.stop())


def render(summary: dict[str, Any]) -> list[str]:
    """A few lines for the markdown report."""
    if "error" in summary:
        return [f"{summary['label']}: {summary['error']}"]
    lines = [
        f"{summary['label']}: {summary['samples']} busy samples at {summary.get('rate', 100)} Hz "
        f"(+{summary.get('idle_samples', 0)} waiting in the event loop's poll, left out)",
        "",
        "share of busy samples by part of the stack (self: the innermost frame is there; "
        "inclusive: the part is anywhere on the stack):",
    ]
    inclusive = dict(summary["inclusive_by_part_percent"])
    for name, pct in summary["self_by_part_percent"]:
        lines.append(f"  {name:<28} self {pct:5.1f}%   inclusive {inclusive.get(name, pct):5.1f}%")
    lines += ["", "top functions by self time:"]
    for name, pct in summary["top_self_functions_percent"]:
        lines.append(f"  {pct:5.1f}%  {name}")
    lines += ["", "the project's own functions, inclusive of everything they call:"]
    for name, pct in summary.get("top_own_functions_inclusive_percent", []):
        lines.append(f"  {pct:5.1f}%  {name}")
    return lines
