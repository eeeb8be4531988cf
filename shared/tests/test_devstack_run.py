"""`make run` supervises what it started and keeps its addresses: a service killed with SIGKILL
is started again while the others keep running, and the next run of the same directory comes
back on the same ports, so clients holding the old URLs reconnect."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from salesplatform.devstack.run import (
    RESTART_MAX_DELAY,
    RESTART_STABLE_SECONDS,
    Restarts,
    port_if_free,
)
from salesplatform.devstack.servers import LOOPBACK, free_port

# Generous: the machine running the suite may be busy; nothing here measures speed.
STACK_TIMEOUT = 300.0


def test_the_pause_before_a_restart_doubles_and_starts_over_after_a_stable_run() -> None:
    restarts = Restarts()
    now = 0.0
    restarts.started(now)
    pauses = []
    for _ in range(8):  # a service that dies at once, again and again
        now += 0.5
        pauses.append(restarts.died(now))
        assert restarts.waiting and not restarts.due(now)
        now += pauses[-1]
        assert restarts.due(now)
        restarts.started(now)
    assert pauses == [1, 2, 4, 8, 16, RESTART_MAX_DELAY, RESTART_MAX_DELAY, RESTART_MAX_DELAY]
    now += RESTART_STABLE_SECONDS  # then it runs a while before dying again
    assert restarts.died(now) == 1
    assert restarts.crashes == 1


def test_a_recorded_port_is_taken_again_only_while_it_is_free() -> None:
    port = free_port()
    assert port_if_free(port) == port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, port))
        holder.listen()
        other = port_if_free(port)
    assert other != port
    assert port_if_free(None) > 0


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A directory in the system temp dir that PostgreSQL's OS account can reach."""
    path = Path(tempfile.mkdtemp(prefix="sp-make-run-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _read_stack(stack_file: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(stack_file.read_text())
        return data
    except (OSError, ValueError):
        return {}


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait(what: str, check: Any, stack: subprocess.Popen[bytes], output: Path) -> Any:
    deadline = time.monotonic() + STACK_TIMEOUT
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        assert stack.poll() is None, f"make run exited with {stack.returncode}:\n{output.read_text()[-4000:]}"
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {STACK_TIMEOUT} s:\n{output.read_text()[-4000:]}")


def _start_stack(root: Path, output: Path) -> subprocess.Popen[bytes]:
    with output.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "salesplatform.devstack", "run", "--root", str(root), "--ready-timeout", "240"],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _running(stack_file: Path, stack: subprocess.Popen[bytes]) -> dict[str, Any] | None:
    data = _read_stack(stack_file)
    return data if data.get("pid") == stack.pid else None


def _stop_stack(stack: subprocess.Popen[bytes]) -> None:
    if stack.poll() is None:
        stack.send_signal(signal.SIGTERM)
        try:
            stack.wait(120)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.wait()


@pytest.mark.timeout(900)
def test_a_killed_service_is_started_again_and_the_next_run_keeps_the_ports(scratch_dir: Path) -> None:
    root = scratch_dir / "run"
    stack_file = root / "stack.json"
    output = scratch_dir / "make-run.out"
    stack = _start_stack(root, output)
    try:
        first = _wait("the stack running", lambda: _running(stack_file, stack), stack, output)
        pids = {name: service["pid"] for name, service in first["services"].items()}
        os.kill(pids["orders"], signal.SIGKILL)

        def orders_again() -> dict[str, Any] | None:
            data = _running(stack_file, stack)
            if data is None or data["services"]["orders"]["pid"] in (None, pids["orders"]):
                return None
            return data if _ready(data["services"]["orders"]["url"]) else None

        again = _wait("orders started again", orders_again, stack, output)
        assert "service orders died (exit code -9)" in output.read_text()
        assert "service orders started again" in output.read_text()
        assert again["services"]["orders"]["url"] == first["services"]["orders"]["url"]
        for name, pid in pids.items():  # the others kept running, untouched
            if name != "orders":
                assert again["services"][name]["pid"] == pid
                assert _ready(again["services"][name]["url"]), name
    finally:
        _stop_stack(stack)
    assert stack.returncode == 0, output.read_text()[-4000:]
    stopped = _read_stack(stack_file)
    assert stopped["pid"] is None and stopped["ports"] == first["ports"]

    rerun = _start_stack(root, output)
    try:
        second = _wait("the stack running again", lambda: _running(stack_file, rerun), rerun, output)
        assert second["ports"] == first["ports"]
        assert second["nats_url"] == first["nats_url"]
        assert second["postgres_admin_dsn"] == first["postgres_admin_dsn"]
        assert {n: s["url"] for n, s in second["services"].items()} == {
            n: s["url"] for n, s in first["services"].items()
        }
    finally:
        _stop_stack(rerun)


def test_the_demo_refuses_a_stack_file_kept_after_a_stop(scratch_dir: Path) -> None:
    from bench.demo import load_stack

    stack_file = scratch_dir / "stack.json"
    stack_file.write_text(json.dumps({"pid": None, "services": {}, "ports": {"orders": 8001}}))
    with pytest.raises(SystemExit, match="is stopped"):
        load_stack(stack_file, None)
