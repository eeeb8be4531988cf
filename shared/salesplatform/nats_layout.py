"""Who may do what on NATS: accounts, users, exports and imports, made from one description.

One NATS account per service, one for outside systems (`SYSTEMS`) and one for operators
(`OPERATORS`). NATS documents accounts as its unit of multi-tenancy: each account is a subject
space and a JetStream of its own, and nothing crosses between accounts but what one exports and
another imports. Per-user permissions on the JetStream API of one shared account were the other
way; they cannot confine a service to its own streams where stream names carry a prefix (a
test's namespace) because a NATS wildcard matches whole tokens only, and a single mistake in a
pattern opens every stream. With accounts, a service's user reaches only its own streams,
whatever their names.

- A service's account holds its streams (events, ingest, dead letters, results) and object
  stores, and its user may use its own JetStream API, except the durable consumers other
  services keep on its event stream, and except creating a consumer on that stream without
  naming it in the subject (the name in the request body would reach theirs).
- A service that consumes another's events is given exactly the JetStream API subjects of its
  one durable consumer (`<consumer>_from_<producer>`) on that one stream: create, info, next
  messages and acknowledgements. It addresses them under `js.<producer>.API` (`api_prefix`).
- Outside systems send commands (`<service>.cmd.*`, request/reply) and ingest
  (`<service>.ingest.>`), and receive results (`<service>.result.>`), rejections of ingested
  commands (`<service>.dlq.rejected`, personal data sealed or left out) and report changes
  (`reporting.changed.>`); their account has a JetStream of its own, where they may keep a
  stream of those subjects to read what arrived while they were away. They read each
  service's results stream (`<SERVICE>_RESULTS`, every ingested command's result) under
  `js.<service>.API`: its info, a message by sequence, and consumers of their own on it
  (create, info, delete, next messages, acknowledgements), nothing of its other streams. (Not in
  the tests' namespaced form, which cannot name the results stream apart from the others.)
- Operators read every account's stream and consumer state and the dead letters (get and delete
  a message of `<SERVICE>_DLQ`), under the same `js.<service>.API` prefixes.

`server_config` writes the whole configuration; `make run`, the test suite and
`deploy/nats/nats.conf` (which docker-compose.yml runs and the NATS Helm chart includes) all use
it. The tests' servers use the `namespaced` form: subjects start with any namespace
token and stream names in JetStream API subjects are wildcards (a test's stream names are one
token such as `T1A2B3C4_CUSTOMER`), so a consumer service's import reaches its own durable on
any of the producer's streams and the producer may create unnamed consumers on any of its own;
everything else is the same.

    python -m salesplatform.nats_layout deploy/nats     # regenerate the deployment's files
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SYSTEMS_ACCOUNT = "SYSTEMS"
OPERATORS_ACCOUNT = "OPERATORS"
SYSTEM_USER = "system"
OPERATOR_USER = "operator"


@dataclass(frozen=True)
class ServiceGrant:
    """A service's place in the layout: whose event streams it consumes, and the further
    subjects it announces to outside systems over core NATS (`changed`: reporting.changed.>)."""

    name: str
    consumes: tuple[str, ...] = ()
    announces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    services: tuple[ServiceGrant, ...]

    def service(self, name: str) -> ServiceGrant:
        for grant in self.services:
            if grant.name == name:
                return grant
        raise LookupError(name)

    def consumers_of(self, producer: str) -> list[str]:
        return [s.name for s in self.services if producer in s.consumes]

    @property
    def users(self) -> list[str]:
        return [s.name for s in self.services] + [SYSTEM_USER, OPERATOR_USER]

    def with_services(self, *extra: ServiceGrant) -> Layout:
        return Layout(self.services + extra)


# The system as deployed. Each service's `consumes` must match its ServiceDefinition (a test
# checks it).
PRODUCTION = Layout(
    (
        ServiceGrant("customer", consumes=("visit", "orders")),
        ServiceGrant("visit", consumes=("customer", "orders")),
        ServiceGrant("orders", consumes=("customer", "visit")),
        ServiceGrant("reporting", consumes=("customer", "visit", "orders"), announces=("changed",)),
    )
)


class EnvRef(str):
    """A value the server takes from its environment (a password kept out of the file)."""

    __slots__ = ()


def password_variable(user: str) -> str:
    return f"{user.upper()}_NATS_PASSWORD"


def env_passwords(layout: Layout) -> dict[str, str]:
    """Every user's password as a reference to `<USER>_NATS_PASSWORD` in the server's environment."""
    return {user: EnvRef(password_variable(user)) for user in layout.users}


def account_of(service: str) -> str:
    return service.upper()


def api_prefix(producer: str) -> str:
    """Where a consumer of `producer`'s events finds the JetStream API subjects it imports."""
    return f"js.{producer}.API"


def consumer_name(consumer: str, producer: str) -> str:
    return f"{consumer}_from_{producer}"


class _Names:
    """Subjects and stream names of one service, as exact names or as namespaced patterns."""

    def __init__(self, service: str, namespaced: bool) -> None:
        self.service = service
        self.namespaced = namespaced

    def subject(self, *parts: str) -> str:
        return ".".join(("*", self.service, *parts) if self.namespaced else (self.service, *parts))

    def stream(self, suffix: str = "") -> str:
        if self.namespaced:
            return "*"
        return self.service.upper() + (f"_{suffix}" if suffix else "")


def _foreign_consumer_api(stream: str, consumer: str) -> list[tuple[str, str]]:
    """(subject, response type) of what a consumer on another account's stream may use."""
    return [
        (f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{consumer}", "single"),
        (f"$JS.API.CONSUMER.INFO.{stream}.{consumer}", "single"),
        (f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}", "stream"),
        (f"$JS.ACK.{stream}.{consumer}.>", "single"),
    ]


def _results_reader_api(stream: str) -> list[tuple[str, str]]:
    """(subject, response type) of what outside systems may use of a results stream: read it
    by sequence, or through consumers of their own."""
    return [
        (f"$JS.API.STREAM.INFO.{stream}", "single"),
        (f"$JS.API.STREAM.MSG.GET.{stream}", "single"),
        (f"$JS.API.CONSUMER.CREATE.{stream}.>", "single"),
        (f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.*", "single"),
        (f"$JS.API.CONSUMER.INFO.{stream}.*", "single"),
        (f"$JS.API.CONSUMER.DELETE.{stream}.*", "single"),
        (f"$JS.API.CONSUMER.MSG.NEXT.{stream}.*", "stream"),
        (f"$JS.ACK.{stream}.>", "single"),
    ]


def _consumer_denied(stream: str, consumer: str) -> list[str]:
    """Every JetStream API subject naming `consumer` on `stream`, for the stream's owner."""
    return [
        f"$JS.API.CONSUMER.*.{stream}.{consumer}",
        f"$JS.API.CONSUMER.*.{stream}.{consumer}.>",
        f"$JS.API.CONSUMER.*.*.{stream}.{consumer}",
        f"$JS.ACK.{stream}.{consumer}.>",
    ]


# What operators may read of every account (read-only), and what they may do to dead letters.
def _operator_api(names: _Names) -> list[str]:
    dlq = names.stream("DLQ")
    return [
        "$JS.API.INFO",
        "$JS.API.STREAM.NAMES",
        "$JS.API.STREAM.LIST",
        "$JS.API.STREAM.INFO.*",
        "$JS.API.CONSUMER.NAMES.*",
        "$JS.API.CONSUMER.LIST.*",
        "$JS.API.CONSUMER.INFO.*.*",
        f"$JS.API.STREAM.MSG.GET.{dlq}",
        f"$JS.API.STREAM.MSG.DELETE.{dlq}",
    ]


def _local(prefix: str, subject: str) -> str:
    """`$JS.API.X` as the importing account addresses it: `<prefix>.X`."""
    return prefix + subject[len("$JS.API") :]


def accounts(layout: Layout, passwords: Mapping[str, str], *, namespaced: bool = False) -> dict[str, Any]:
    """The `accounts` block of the server configuration."""
    out: dict[str, Any] = {}
    systems_imports: list[dict[str, Any]] = []
    systems_api: list[str] = []  # the imported JetStream API subjects, as outside systems address them
    operator_imports: list[dict[str, Any]] = []
    imports: dict[str, list[dict[str, Any]]] = {s.name: [] for s in layout.services}
    for grant in layout.services:
        for producer in grant.consumes:
            layout.service(producer)  # a service it consumes must be in the layout
    for grant in layout.services:
        s = grant.name
        names = _Names(s, namespaced)
        exports: list[dict[str, Any]] = [
            {"service": names.subject("cmd", "*"), "accounts": [SYSTEMS_ACCOUNT]},
            {"service": names.subject("ingest", ">"), "accounts": [SYSTEMS_ACCOUNT]},
            {"stream": names.subject("result", ">"), "accounts": [SYSTEMS_ACCOUNT]},
            {"stream": names.subject("dlq", "rejected"), "accounts": [SYSTEMS_ACCOUNT]},
            {"stream": names.subject("dlq", ">"), "accounts": [OPERATORS_ACCOUNT]},
        ]
        systems_imports += [
            {"service": {"account": account_of(s), "subject": names.subject("cmd", "*")}},
            {"service": {"account": account_of(s), "subject": names.subject("ingest", ">")}},
            {"stream": {"account": account_of(s), "subject": names.subject("result", ">")}},
            {"stream": {"account": account_of(s), "subject": names.subject("dlq", "rejected")}},
        ]
        if not namespaced:
            for subject, response in _results_reader_api(names.stream("RESULTS")):
                reader_export: dict[str, Any] = {"service": subject, "accounts": [SYSTEMS_ACCOUNT]}
                if response != "single":
                    reader_export["response_type"] = response
                exports.append(reader_export)
                reader_import: dict[str, Any] = {"service": {"account": account_of(s), "subject": subject}}
                if subject.startswith("$JS.API."):
                    reader_import["to"] = _local(api_prefix(s), subject)
                    systems_api.append(reader_import["to"])
                systems_imports.append(reader_import)
        for announced in grant.announces:
            exports.append({"stream": names.subject(announced, ">"), "accounts": [SYSTEMS_ACCOUNT]})
            systems_imports.append({"stream": {"account": account_of(s), "subject": names.subject(announced, ">")}})
        # A consumer created without its name in the subject takes the name from the request
        # body, which could be another service's consumer on the event stream. (Not in the
        # namespaced form, which cannot name the event stream: there it would also stop the
        # service's own unnamed consumers, which an object store's reads create.)
        denied = [] if namespaced else [f"$JS.API.CONSUMER.CREATE.{names.stream()}"]
        for consumer in layout.consumers_of(s):
            durable = consumer_name(consumer, s)
            for subject, response in _foreign_consumer_api(names.stream(), durable):
                export: dict[str, Any] = {"service": subject, "accounts": [account_of(consumer)]}
                if response != "single":
                    export["response_type"] = response
                exports.append(export)
                entry: dict[str, Any] = {"service": {"account": account_of(s), "subject": subject}}
                if subject.startswith("$JS.API."):
                    entry["to"] = _local(api_prefix(s), subject)
                imports[consumer].append(entry)
            denied += _consumer_denied(names.stream(), durable)
        for subject in _operator_api(names):
            exports.append({"service": subject, "accounts": [OPERATORS_ACCOUNT]})
            operator_imports.append(
                {"service": {"account": account_of(s), "subject": subject}, "to": _local(api_prefix(s), subject)}
            )
        operator_imports.append({"stream": {"account": account_of(s), "subject": names.subject("dlq", ">")}})
        publish = [
            names.subject("event", ">"),
            names.subject("dlq", ">"),
            names.subject("result", ">"),
            *(names.subject(a, ">") for a in grant.announces),
            "$JS.API.>",
            "$JS.ACK.>",
            "$O.>",  # its own account's object stores (the visit service's photos)
            "_INBOX.>",
            *(f"{api_prefix(p)}.>" for p in grant.consumes),
        ]
        out[account_of(s)] = {
            "jetstream": "enabled",
            "users": [
                {
                    "user": s,
                    "password": passwords[s],
                    "permissions": {
                        "publish": {"allow": publish, "deny": denied},
                        "subscribe": {"allow": [names.subject(">"), "_INBOX.>"]},
                        "allow_responses": True,
                    },
                }
            ],
            "exports": exports,
        }
    for grant in layout.services:
        if imports[grant.name]:
            out[account_of(grant.name)]["imports"] = imports[grant.name]
    all_names = [_Names(s.name, namespaced) for s in layout.services]
    out[SYSTEMS_ACCOUNT] = {
        "jetstream": "enabled",
        "users": [
            {
                "user": SYSTEM_USER,
                "password": passwords[SYSTEM_USER],
                "permissions": {
                    "publish": {
                        "allow": [
                            *(n.subject("cmd", "*") for n in all_names),
                            *(n.subject("ingest", ">") for n in all_names),
                            *systems_api,
                            "$JS.API.>",
                            "$JS.ACK.>",
                            "_INBOX.>",
                        ]
                    },
                    "subscribe": {
                        "allow": [
                            *(n.subject("result", ">") for n in all_names),
                            *(n.subject("dlq", "rejected") for n in all_names),
                            *(_Names(g.name, namespaced).subject(a, ">") for g in layout.services for a in g.announces),
                            "_INBOX.>",
                        ]
                    },
                },
            }
        ],
        "imports": systems_imports,
    }
    out[OPERATORS_ACCOUNT] = {
        "users": [
            {
                "user": OPERATOR_USER,
                "password": passwords[OPERATOR_USER],
                "permissions": {
                    "publish": {"allow": [*(f"{api_prefix(s.name)}.>" for s in layout.services), "_INBOX.>"]},
                    "subscribe": {"allow": [*(n.subject("dlq", ">") for n in all_names), "_INBOX.>"]},
                },
            }
        ],
        "imports": operator_imports,
    }
    return out


# --- rendering ---------------------------------------------------------------------------------

HEADER = (
    "Generated by salesplatform.nats_layout from its description of the services: do not edit.\n"
    "Regenerate with `python -m salesplatform.nats_layout deploy/nats` (a test checks it is up to date)."
)


def _conf_value(value: Any, indent: str) -> str:
    if isinstance(value, EnvRef):
        return f"${value}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)
    inner = indent + "  "
    if isinstance(value, Mapping):
        flat = all(
            not isinstance(v, Mapping | list) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
            for v in value.values()
        )
        one_line = "{" + ", ".join(f"{key}: {_conf_value(item, inner)}" for key, item in value.items()) + "}"
        if flat and len(one_line) + len(indent) <= 120:
            return one_line
        lines = [f"{inner}{key}: {_conf_value(item, inner)}" for key, item in value.items()]
        return "{\n" + "\n".join(lines) + f"\n{indent}}}"
    items = list(value)
    if all(isinstance(i, str) for i in items):
        return "[" + ", ".join(_conf_value(i, inner) for i in items) + "]"
    return "[\n" + "\n".join(f"{inner}{_conf_value(i, inner)}" for i in items) + f"\n{indent}]"


def server_config(
    layout: Layout,
    passwords: Mapping[str, str],
    *,
    namespaced: bool = False,
    settings: Mapping[str, Any] | None = None,
    comment: str = "",
) -> str:
    """The nats-server configuration: `settings` (port, limits, JetStream) and the accounts.
    Passwords given as `EnvRef` are read from the server's environment."""
    lines = [f"# {line}" if line else "#" for line in (comment or HEADER).splitlines()]
    for key, value in (settings or {}).items():
        lines.append(f"{key}: {_conf_value(value, '')}")
    lines.append(f"accounts: {_conf_value(accounts(layout, passwords, namespaced=namespaced), '')}")
    return "\n".join(lines) + "\n"


DEPLOY_SETTINGS: dict[str, Any] = {"port": 4222, "max_payload": 1048576, "jetstream": "enabled"}


def deploy_files(layout: Layout = PRODUCTION) -> dict[str, str]:
    """What `deploy/nats/` holds of the layout: the server configuration, passwords from the
    environment and the store directory on the command line. docker-compose.yml runs it and the
    NATS Helm chart includes it (deploy/nats/values.yaml), its own server settings winning."""
    comment = "\n".join(
        [
            HEADER,
            "Run: nats-server -c nats.conf -js -sd /data -m 8222, with these in its environment:",
            *(f"  {password_variable(u)}" for u in layout.users),
        ]
    )
    return {"nats.conf": server_config(layout, env_passwords(layout), settings=DEPLOY_SETTINGS, comment=comment)}


def write_deploy_files(directory: Path, layout: Layout = PRODUCTION) -> list[Path]:
    written = []
    for name, text in deploy_files(layout).items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salesplatform.nats_layout")
    parser.add_argument("directory", type=Path, help="where to write nats.conf")
    args = parser.parse_args(list(argv) if argv is not None else None)
    for path in write_deploy_files(args.directory):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
