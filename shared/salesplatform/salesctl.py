"""`salesctl`: the operators' command line.

It talks to each service's operations API (`/admin/*`, with an operator's token) and to NATS
as the `operator` user. Where everything is comes from `.run/stack.json` (what `make run`
writes; `--stack` or SALESCTL_STACK names another), else from the services' own settings:
`<SERVICE>_URL` (or `<SERVICE>_HTTP_HOST` and `<SERVICE>_HTTP_PORT`), `NATS_URL` with
`SALESCTL_NATS_USER`/`SALESCTL_NATS_PASSWORD` (the operator user). The token is SALESCTL_TOKEN,
or one minted for `--operator` with the local signing key (`AUTH_SIGNING_KEY_FILE`).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import nats
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from salesplatform import auth
from salesplatform.events import Actor, Role
from salesplatform.logging import configure_logging
from salesplatform.nats_layout import SYSTEM_USER, api_prefix, password_variable

SERVICES = ("customer", "visit", "orders", "reporting")
DEFAULT_STACK = Path(".run/stack.json")

app = typer.Typer(help="Operate the sales platform: its services, streams, dead letters and projections.")
dlq_app = typer.Typer(help="Dead letters: list, show, replay, purge.")
projections_app = typer.Typer(help="Projections: list, rebuild, watch a rebuild.")
token_app = typer.Typer(help="Tokens for the services' APIs.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(projections_app, name="projections")
app.add_typer(token_app, name="token")

console = Console()


@dataclass
class Target:
    """Where the services and NATS are, and who the operator is."""

    urls: dict[str, str]
    nats_url: str | None = None
    nats_login: dict[str, str] = field(default_factory=dict)
    signing_key_file: str | None = None
    operator: str = "operator"
    token: str | None = None
    database_urls: dict[str, str] = field(default_factory=dict)
    # Each service's NATS password (its user is named after it): backup and restore act as it;
    # restore sends the queued commands again as the outside systems' user (`system`).
    nats_passwords: dict[str, str] = field(default_factory=dict)

    def nats_user_login(self, user: str) -> dict[str, str]:
        if user not in self.nats_passwords:
            raise typer.BadParameter(f"no NATS password for {user}: a stack file, or {password_variable(user)}")
        return {"user": user, "password": self.nats_passwords[user]}

    def bearer(self) -> dict[str, str]:
        if self.token is None:
            try:
                key = auth.load_signing_key(self.signing_key_file)
            except FileNotFoundError as exc:
                raise typer.BadParameter(f"{exc}; or set SALESCTL_TOKEN") from None
            self.token = auth.mint(Actor(id=self.operator, role=Role.operator), key, ttl_seconds=3600)
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, service: str) -> str:
        if service not in self.urls:
            raise typer.BadParameter(f"no address for {service}: known are {', '.join(self.urls) or 'none'}")
        return self.urls[service]


def load_target(stack: Path | None, operator: str) -> Target:
    """From the stack file if there is one, else from the environment."""
    env = os.environ
    path = stack or (Path(env["SALESCTL_STACK"]) if env.get("SALESCTL_STACK") else DEFAULT_STACK)
    target = Target(urls={}, operator=operator, token=env.get("SALESCTL_TOKEN"))
    if path.exists():
        doc = json.loads(path.read_text())
        target.urls = {name: svc["url"] for name, svc in doc.get("services", {}).items() if name in SERVICES}
        # Each database, whether its service runs or not (`make servers` runs none).
        target.database_urls = {name: url for name, url in doc.get("databases", {}).items() if name in SERVICES}
        target.nats_url = doc.get("nats_url")
        target.signing_key_file = doc.get("signing_key_file")
        secrets_file = doc.get("secrets_file")
        if secrets_file and Path(secrets_file).exists():
            passwords = json.loads(Path(secrets_file).read_text()).get("nats_passwords", {})
            if passwords.get("operator"):
                target.nats_login = {"user": "operator", "password": passwords["operator"]}
            target.nats_passwords = {u: passwords[u] for u in (*SERVICES, SYSTEM_USER) if u in passwords}
        return target
    for name in SERVICES:
        upper = name.upper()
        if env.get(f"{upper}_URL"):
            target.urls[name] = env[f"{upper}_URL"]
        elif env.get(f"{upper}_HTTP_PORT"):
            target.urls[name] = f"http://{env.get(f'{upper}_HTTP_HOST', '127.0.0.1')}:{env[f'{upper}_HTTP_PORT']}"
        if env.get(f"{upper}_DATABASE_URL"):
            target.database_urls[name] = env[f"{upper}_DATABASE_URL"]
    for user in (*SERVICES, SYSTEM_USER):
        if env.get(password_variable(user)):
            target.nats_passwords[user] = env[password_variable(user)]
    target.nats_url = env.get("NATS_URL")
    if env.get("SALESCTL_NATS_USER"):
        target.nats_login = {"user": env["SALESCTL_NATS_USER"], "password": env.get("SALESCTL_NATS_PASSWORD", "")}
    target.signing_key_file = env.get("AUTH_SIGNING_KEY_FILE")
    return target


StackOption = Annotated[Path | None, typer.Option("--stack", help="a stack file (default .run/stack.json)")]
OperatorOption = Annotated[str, typer.Option("--operator", help="the operator's id in a minted token")]


@app.callback()
def _main(ctx: typer.Context, stack: StackOption = None, operator: OperatorOption = "operator") -> None:
    # The platform's own logs (JSON on stdout) only for warnings: the output is the tables.
    configure_logging("salesctl", os.environ.get("LOG_LEVEL", "WARNING"))
    ctx.obj = (stack, operator)


def _target(ctx: typer.Context) -> Target:
    stack, operator = ctx.obj or (None, "operator")
    return load_target(stack, operator)


def _request(target: Target, service: str, method: str, path: str, **kw: Any) -> Any:
    try:
        r = httpx.request(method, target.url(service) + path, headers=target.bearer(), timeout=60.0, **kw)
    except httpx.HTTPError as exc:
        console.print(f"[red]{service}: {exc!r}[/red]")
        raise typer.Exit(2) from None
    body = r.json() if r.content else None
    if r.status_code >= 400:
        error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
        console.print(f"[red]{service}: {r.status_code} {error.get('code', '')}: {error.get('message', r.text)}[/red]")
        raise typer.Exit(1)
    return body


def _services(service: str | None) -> list[str]:
    if service is None:
        return list(SERVICES)
    if service not in SERVICES:
        raise typer.BadParameter(f"no service {service}: one of {', '.join(SERVICES)}")
    return [service]


ServiceOption = Annotated[str | None, typer.Option("--service", "-s", help="one service (default: all)")]
ServiceArgument = Annotated[str, typer.Argument(help="the service: " + ", ".join(SERVICES))]


# -- status -----------------------------------------------------------------------------------


@app.command()
def status(ctx: typer.Context, service: ServiceOption = None) -> None:
    """Each service: ready, version, log head, outbox backlog, consumers, projection lag, dead letters."""
    target = _target(ctx)
    table = Table(title="services")
    for column in (
        "service",
        "ready",
        "version",
        "log head",
        "outbox",
        "consumers (pending/unacked)",
        "projections behind",
        "dead letters",
    ):
        table.add_column(column)
    not_ready = False
    for name in _services(service):
        if name not in target.urls:
            continue
        try:
            s = _request(target, name, "GET", "/admin/status")
        except typer.Exit:
            table.add_row(name, "[red]unreachable[/red]", "", "", "", "", "", "")
            not_ready = True
            continue
        ready = all(s["ready"].values())
        not_ready |= not ready
        behind = [f"{p['name']} {p['behind']}" for p in s["projections"]]
        table.add_row(
            name,
            "[green]ready[/green]"
            if ready
            else "[red]" + ", ".join(k for k, v in s["ready"].items() if not v) + "[/red]",
            s["version"],
            str(s["log_head"]),
            str(s["outbox_pending"]),
            "\n".join(f"{c['durable']} {c['pending']}/{c['ack_pending']}" for c in s["consumers"]),
            "\n".join(behind),
            "\n".join(f"{reason} {n}" for reason, n in s["dead_letters"].items()) or "0",
        )
    console.print(table)
    if not_ready:
        raise typer.Exit(1)


# -- NATS ---------------------------------------------------------------------------------------


async def _jetstream_state(target: Target, names: list[str]) -> list[tuple[str, Any, list[Any]]]:
    from salesplatform.backup import all_streams

    if not target.nats_url:
        raise typer.BadParameter("no NATS address: a stack file, or NATS_URL")
    nc = await nats.connect(target.nats_url, **target.nats_login)
    try:
        out = []
        for name in names:
            js = nc.jetstream(prefix=api_prefix(name))
            for info in await all_streams(js):
                consumers = await js.consumers_info(info.config.name or "")
                out.append((name, info, consumers))
        return out
    finally:
        await nc.close()


@app.command()
def streams(ctx: typer.Context, service: ServiceOption = None) -> None:
    """Every service's JetStream streams: messages, bytes, first and last sequence."""
    table = Table(title="streams")
    for column in ("service", "stream", "subjects", "messages", "bytes", "first", "last", "consumers"):
        table.add_column(column)
    for name, info, consumers in asyncio.run(_jetstream_state(_target(ctx), _services(service))):
        st = info.state
        table.add_row(
            name,
            info.config.name,
            ", ".join(info.config.subjects or []),
            str(st.messages),
            str(st.bytes),
            str(st.first_seq),
            str(st.last_seq),
            str(len(consumers)),
        )
    console.print(table)


@app.command()
def consumers(ctx: typer.Context, service: ServiceOption = None) -> None:
    """Every durable consumer: pending, unacked, redelivered, last delivered."""
    table = Table(title="consumers")
    for column in ("stream", "durable", "pending", "unacked", "redelivered", "delivered"):
        table.add_column(column)
    for _name, info, found in asyncio.run(_jetstream_state(_target(ctx), _services(service))):
        for c in found:
            table.add_row(
                info.config.name,
                c.name,
                str(c.num_pending or 0),
                str(c.num_ack_pending or 0),
                str(c.num_redelivered or 0),
                str(c.delivered.stream_seq if c.delivered else 0),
            )
    console.print(table)


# -- dead letters -------------------------------------------------------------------------------


def _dead_letter_table(service: str, letters: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{service} dead letters")
    for column in ("seq", "at", "reason", "command", "sender", "deliveries", "replay", "error"):
        table.add_column(column)
    for d in letters:
        sender = d.get("sender") or {}
        table.add_row(
            str(d["seq"]),
            d["at"][:19],
            d["reason"],
            d.get("command") or d.get("projection") or "",
            sender.get("id", ""),
            str(d["deliveries"]),
            d["replay"],
            _error_text(d.get("error") or ""),
        )
    return table


def _error_text(error: str) -> str:
    """A refused command's error as `code: message`; anything else as it is."""
    try:
        doc = json.loads(error)
    except ValueError:
        return error[:120]
    inner = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(inner, dict):
        return f"{inner.get('code')}: {inner.get('message')}"[:120]
    return error[:120]


ReasonOption = Annotated[str | None, typer.Option(help="rejected, processing_failed, projection_failed, malformed")]
CommandOption = Annotated[str | None, typer.Option(help="a command or a projection")]
OlderOption = Annotated[float | None, typer.Option(help="dead-lettered at least this many hours ago")]
NewerOption = Annotated[float | None, typer.Option(help="dead-lettered at most this many hours ago")]


def _filters(reason: str | None, command: str | None, older: float | None, newer: float | None) -> dict[str, Any]:
    given = {"reason": reason, "command": command, "older_than_hours": older, "newer_than_hours": newer}
    return {k: v for k, v in given.items() if v is not None}


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    service: ServiceOption = None,
    reason: ReasonOption = None,
    command: CommandOption = None,
    older_than_hours: OlderOption = None,
    newer_than_hours: NewerOption = None,
    limit: int = 50,
) -> None:
    """The latest dead letters, newest first."""
    target = _target(ctx)
    params = {**_filters(reason, command, older_than_hours, newer_than_hours), "limit": limit}
    for name in _services(service):
        if name in target.urls:
            letters = _request(target, name, "GET", "/admin/dead-letters", params=params)["dead_letters"]
            console.print(_dead_letter_table(name, letters))


@dlq_app.command("show")
def dlq_show(ctx: typer.Context, service: ServiceArgument, seq: int) -> None:
    """One dead letter whole: headers, failures, payload (opened if sealed)."""
    console.print_json(data=_request(_target(ctx), service, "GET", f"/admin/dead-letters/{seq}"))


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context,
    service: ServiceArgument,
    seq: Annotated[int | None, typer.Argument(help="one dead letter; or filters")] = None,
    reason: ReasonOption = None,
    command: CommandOption = None,
    older_than_hours: OlderOption = None,
    newer_than_hours: NewerOption = None,
    keep: Annotated[bool, typer.Option(help="keep the dead letter after it went through")] = False,
) -> None:
    """Send dead letters again as the operator: one by its seq, or those the filters name."""
    target = _target(ctx)
    params = {"keep": str(keep).lower()}
    if seq is not None:
        results = [_request(target, service, "POST", f"/admin/dead-letters/{seq}/replay", params=params)]
    else:
        body = _filters(reason, command, older_than_hours, newer_than_hours)
        if not body:
            raise typer.BadParameter("name a dead letter or give a filter (--reason, --command, --older-than-hours)")
        results = _request(target, service, "POST", "/admin/dead-letters/replay", params=params, json=body)["replayed"]
    table = Table(title=f"{service} replayed")
    for column in ("seq", "status", "detail"):
        table.add_column(column)
    failed = False
    for r in results:
        failed |= r["status"] in ("failed", "refused")
        detail = r.get("error") if r["status"] in ("failed", "refused") else r.get("result") or r.get("changes")
        if r["status"] == "failed":
            detail = f"{_error_text(r['error'])} (now dead letter {r['dead_letter']})"
        shown = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
        table.add_row(str(r["seq"]), r["status"], shown if detail else "")
    console.print(table)
    if failed:
        raise typer.Exit(1)


@dlq_app.command("purge")
def dlq_purge(
    ctx: typer.Context,
    service: ServiceArgument,
    seq: Annotated[int | None, typer.Argument(help="one dead letter; or filters")] = None,
    reason: ReasonOption = None,
    command: CommandOption = None,
    older_than_hours: OlderOption = None,
    newer_than_hours: NewerOption = None,
    all_: Annotated[bool, typer.Option("--all", help="every dead letter of the service")] = False,
) -> None:
    """Remove dead letters: one by its seq, or those the filters name (or --all)."""
    target = _target(ctx)
    if seq is not None:
        purged = _request(target, service, "DELETE", f"/admin/dead-letters/{seq}")["purged"]
    else:
        body = {**_filters(reason, command, older_than_hours, newer_than_hours), "all": all_}
        purged = _request(target, service, "POST", "/admin/dead-letters/purge", json=body)["purged"]
    console.print(f"purged {len(purged)} dead letter(s) of {service}: {', '.join(map(str, purged))}")


# -- projections --------------------------------------------------------------------------------


@projections_app.command("list")
def projections_list(ctx: typer.Context, service: ServiceOption = None) -> None:
    """Each projection's active generation, checkpoint, lag and rebuild."""
    target = _target(ctx)
    table = Table(title="projections")
    for column in ("service", "projection", "generation", "position", "behind", "applied", "rebuild"):
        table.add_column(column)
    for name in _services(service):
        if name not in target.urls:
            continue
        for p in _request(target, name, "GET", "/admin/status")["projections"]:
            rebuild = p.get("rebuild") or {}
            table.add_row(
                name,
                p["name"],
                str(p["generation"]),
                str(p["position"]),
                str(p["behind"]),
                str(p["events_applied"]),
                str(rebuild.get("status", "")),
            )
    console.print(table)


@projections_app.command("rebuild")
def projections_rebuild(
    ctx: typer.Context,
    service: ServiceArgument,
    projection: str,
    watch: Annotated[bool, typer.Option(help="follow it to the switch")] = True,
) -> None:
    """Rebuild a projection from the log; the current generation answers until the switch."""
    target = _target(ctx)
    current = _newest_generation(target, service, projection)
    _request(target, service, "POST", f"/admin/projections/{projection}/rebuild")
    if watch:
        _watch(target, service, projection, after=current["generation"] if current else 0)


@projections_app.command("watch")
def projections_watch(ctx: typer.Context, service: ServiceArgument, projection: str) -> None:
    """Follow a running rebuild: its checkpoint against the log head, then the switch."""
    target = _target(ctx)
    newest = _newest_generation(target, service, projection)
    if newest is None or newest["status"] != "building":
        active = newest["generation"] if newest else "none"
        console.print(f"no rebuild of {projection} is running; generation {active} serves")
        return
    _watch(target, service, projection, after=newest["generation"] - 1)


def _newest_generation(target: Target, service: str, projection: str) -> dict[str, Any] | None:
    """The projection's newest generation as its database records it (whichever replica runs
    the rebuild)."""
    generations = _request(target, service, "GET", "/admin/projections")["generations"]
    mine = [g for g in generations if g["name"] == projection]
    return max(mine, key=lambda g: g["generation"]) if mine else None


def _watch(target: Target, service: str, projection: str, *, after: int, poll: float = 0.5) -> None:
    """A progress bar of the generation after `after` filling from the log, until it is active."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} log positions"))
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"{service}/{projection}", total=None)
        while True:
            head = _request(target, service, "GET", "/admin/status")["log_head"]
            newest = _newest_generation(target, service, projection)
            if newest is None:
                console.print(f"[red]{service} has no projection {projection}[/red]")
                raise typer.Exit(1)
            if newest["generation"] > after:
                position = min(newest["position"] or 0, head)
                progress.update(task, completed=position, total=max(head, 1))
                if newest["status"] == "active":
                    progress.update(task, completed=max(head, 1))
                    break
            failure = (_request(target, service, "GET", "/admin/projections")["rebuilds"].get(projection) or {}).get(
                "status", ""
            )
            if failure.startswith("failed"):
                console.print(f"[red]{failure}[/red]")
                raise typer.Exit(1)
            time.sleep(poll)
    console.print(f"switched: {projection} now serves generation {newest['generation']}")


# -- backup and restore ----------------------------------------------------------------------------


def _databases(target: Target, service: str | None) -> dict[str, str]:
    found = {name: target.database_urls[name] for name in _services(service) if name in target.database_urls}
    if not found:
        raise typer.BadParameter("no database addresses: a stack file, or <SERVICE>_DATABASE_URL")
    return found


@app.command()
def backup(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="where to write the backup (made if missing)")],
    service: ServiceOption = None,
) -> None:
    """Back up each service's database and what JetStream holds that the databases do not."""
    from salesplatform.backup import back_up

    target = _target(ctx)
    if not target.nats_url:
        raise typer.BadParameter("no NATS address: a stack file, or NATS_URL")
    manifest = asyncio.run(back_up(directory, _databases(target, service), target.nats_url, target.nats_user_login))
    table = Table(title=f"backup in {directory}")
    for column in ("service", "database", "streams (messages)"):
        table.add_column(column)
    for name, entry in manifest["services"].items():
        table.add_row(name, entry["database"], "\n".join(f"{k} {v}" for k, v in entry["streams"].items()))
    console.print(table)


@app.command()
def restore(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="a backup salesctl backup wrote")],
    service: ServiceOption = None,
) -> None:
    """Restore a backup into empty servers, before the services start (see the README)."""
    from salesplatform.backup import restore as restore_backup

    target = _target(ctx)
    if not target.nats_url:
        raise typer.BadParameter("no NATS address: a stack file, or NATS_URL")
    done = asyncio.run(restore_backup(directory, _databases(target, service), target.nats_url, target.nats_user_login))
    table = Table(title=f"restored from {directory}")
    for column in ("service", "events to publish again", "messages"):
        table.add_column(column)
    for name, entry in done.items():
        messages = "\n".join(f"{k} {v}" for k, v in entry["messages"].items())
        table.add_row(name, str(entry["events_to_publish"]), messages)
    console.print(table)


# -- tokens and keys ------------------------------------------------------------------------------


@token_app.command("mint")
def token_mint(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="the actor's role")],
    id_: Annotated[str, typer.Option("--id", help="the actor's id")],
    district: str | None = None,
    area: str | None = None,
    ttl: Annotated[int, typer.Option(help="seconds")] = auth.DEFAULT_TTL_SECONDS,
) -> None:
    """Mint a token with the local signing key (as `python -m salesplatform.auth mint`)."""
    args = ["mint", "--role", role, "--id", id_, "--ttl", str(ttl)]
    args += ["--district", district] if district else []
    args += ["--area", area] if area else []
    key = _target(ctx).signing_key_file
    raise typer.Exit(auth.main([*args, "--key", key] if key else args))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def keys(ctx: typer.Context) -> None:
    """The token keys: init, add, switch, retire, show (`python -m salesplatform.auth keys`)."""
    raise typer.Exit(auth.main(["keys", *ctx.args]))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
