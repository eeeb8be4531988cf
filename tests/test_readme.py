"""The README's first program works as printed on a fresh `make run`: the stack is started as
`make run` starts it (in a scratch directory), the program is taken from the README word for
word and run twice from that directory (the second run replays every result)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"


def first_program() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Integrating another system") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README has no program in its publishing section"
    return match.group(1)


def _ready(stack_file: Path) -> bool:
    if not stack_file.exists():
        return False
    stack = json.loads(stack_file.read_text())
    urls = [s["url"] for name, s in stack["services"].items() if name != "console"]
    for url in urls:
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=2) as response:
                if response.status != 200:
                    return False
        except OSError:
            return False
    return len(urls) == 4


@pytest.mark.timeout(300)
def test_the_first_program_of_the_readme_runs_as_printed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "NATS_", "TEST_"))}
    stack = subprocess.Popen(
        [sys.executable, "-m", "salesplatform.devstack", "run", "--ready-timeout", "180"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not _ready(tmp_path / ".run" / "stack.json"):
            assert stack.poll() is None, stack.stdout.read().decode(errors="replace") if stack.stdout else ""
            assert time.monotonic() < deadline, "make run's stack did not become ready"
            time.sleep(1)
        program = first_program()
        for attempt in ("first", "again"):
            run = subprocess.run(
                [sys.executable, "-c", program], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            assert run.returncode == 0, (attempt, run.stdout, run.stderr)
            assert "log_contact {'ok': True" in run.stdout, (attempt, run.stdout)
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.wait()
