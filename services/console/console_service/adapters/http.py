"""The console's web pages: sign-in, the report pages, CSV downloads, the approval queues, the
live-update stream (Server-Sent Events) and the health checks.

Who is looking comes from the session cookie set at sign-in, or from a header an
authenticating proxy sets on every request (`CONSOLE_TOKEN_HEADER`). Every API call carries
that viewer's token; a refusal of the API is shown on the page with its status and code.
Forms that change something (sign-in, decisions) carry a CSRF token matching a cookie, and the
session cookie is SameSite=Lax and HttpOnly.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from console_service.adapters.identity import Identity, Unauthenticated, Viewer
from console_service.adapters.services import ApiError, Services
from console_service.application import approvals
from console_service.application.changes import ChangeHub
from console_service.application.directory import Directory, StaffMember
from console_service.application.field import FIELD_PAGES
from console_service.application.office import OFFICE_PAGES
from console_service.application.pages import PAGES as REPORT_PAGES
from console_service.application.pages import Context, PageBuilder, PageView
from console_service.config import ConsoleSettings
from console_service.domain import i18n
from console_service.domain.judgement import light
from console_service.domain.money import percent, yuan
from console_service.domain.tables import Column, Table, csv_rows
from salesplatform import metrics
from salesplatform.clock import business_date
from salesplatform.csv_export import csv_text
from salesplatform.events import Actor, Role

log = structlog.get_logger(__name__)

PACKAGE = Path(__file__).resolve().parents[1]
SESSION_COOKIE = "console_session"
CSRF_COOKIE = "console_csrf"
LANG_COOKIE = "console_lang"
FLASH_COOKIE = "console_flash"
PARTIAL_HEADER = "x-console-partial"
HEARTBEAT_SECONDS = 15.0
# Roles of the department as a whole: not in the staff directory, chosen at the local sign-in.
DEPARTMENT_ROLES = (Role.sales_manager, Role.general_manager, Role.clerk, Role.inspector)
NAV = (
    "kpi",
    "sales",
    "targets",
    "composition",
    "receivables",
    "returns",
    "complaints",
    "satisfaction",
    "customer_base",
    "approvals",
    "office",
    "units",
    "office_reports",
    "check_ins",
    "photos",
)
PAGES: dict[str, PageBuilder] = {**REPORT_PAGES, **OFFICE_PAGES, **FIELD_PAGES}
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


@dataclass
class Console:
    """What the pages need; built once by the composition root."""

    settings: ConsoleSettings
    identity: Identity
    services: Services
    directory: Directory
    hub: ChangeHub
    feed_connected: Callable[[], bool]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def today(self) -> date:
        return business_date(datetime.now(UTC), self.settings.timezone)


class SecurityHeaders:
    """Adds the headers every page gets (no framing, no foreign scripts or styles)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(PACKAGE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(yuan=yuan, percent=percent, light=light)
    return env


# -- requests ---------------------------------------------------------------------------------


def language_of(request: Request) -> str:
    return i18n.language(request.cookies.get(LANG_COOKIE))


def token_of(console: Console, request: Request) -> str | None:
    header = console.settings.token_header.strip().lower()
    if header and request.headers.get(header):
        return request.headers[header]
    return request.cookies.get(SESSION_COOKIE)


def viewer_of(console: Console, request: Request) -> Viewer | None:
    token = token_of(console, request)
    if not token:
        return None
    try:
        return console.identity.viewer(token)
    except Unauthenticated:
        return None


def safe_next(value: str | None) -> str:
    """Only a path of this console (no other host) to go back to after signing in."""
    if not value:
        return "/kpi"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return "/kpi"
    return value


async def form_of(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def csrf_ok(request: Request, form: dict[str, str]) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get("csrf", "")
    return bool(cookie) and hmac.compare_digest(cookie, sent)


def query_without(request: Request, *names: str) -> str:
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in names]
    return urlencode(pairs)


# -- the app -------------------------------------------------------------------------------------


def create_app(console: Console, *, lifespan: Any = None) -> Any:
    app = FastAPI(title="Sales console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    # The process, its build and how long each request took, as every service reports them.
    registry = metrics.process_registry("console")
    app.add_middleware(metrics.RequestDurations, service="console", registry=registry)
    env = templates()
    app.mount("/static", StaticFiles(directory=PACKAGE / "static"), name="static")

    def render(
        request: Request,
        template: str,
        status: int = 200,
        *,
        viewer: Viewer | None = None,
        **values: Any,
    ) -> HTMLResponse:
        lang = language_of(request)
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        body = env.get_template(template).render(
            lang=lang,
            t=lambda key, **kw: i18n.text(key, lang, **kw),
            term=lambda kind, value: i18n.term(kind, value, lang),
            viewer=viewer,
            viewer_name=values.pop("viewer_name", viewer.actor.id if viewer else ""),
            nav=NAV,
            path=request.url.path,
            query=request.url.query,
            csrf=csrf,
            local_login=console.settings.local_login,
            **values,
        )
        response = HTMLResponse(body, status_code=status)
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(
                CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=console.settings.secure_cookies
            )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def name_of(viewer: Viewer) -> str:
        try:
            names = await console.directory.names(viewer.token)
        except ApiError:
            return viewer.actor.id
        return names.person(viewer.actor.id)

    def to_sign_in(request: Request) -> Response:
        if request.headers.get(PARTIAL_HEADER):
            return JSONResponse({"error": {"code": "missing_token", "message": "sign in again"}}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    # -- health -------------------------------------------------------------------------------

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        """Ready once the change feed is connected (pages are live); the services' own health
        is shown, not required: a page names a service that does not answer."""
        feed = console.feed_connected()
        services = await console.services.reachable()
        body = {"status": "ready" if feed else "not_ready", "checks": {"nats": feed}, "services": services}
        return JSONResponse(body, status_code=200 if feed else 503)

    @app.get("/metrics")
    async def metrics_exposition() -> Response:
        """The process, the build and HTTP request durations, in Prometheus text format: for a
        scraper on the operators' network."""
        return Response(metrics.exposition_of(registry), media_type=metrics.CONTENT_TYPE)

    # -- sign-in ------------------------------------------------------------------------------

    @app.get("/login")
    async def sign_in_page(request: Request) -> Response:
        return await sign_in(request, None)

    async def sign_in(request: Request, problem: str | None, status: int = 200) -> Response:
        staff: list[StaffMember] = []
        areas: dict[str, str] = {}
        districts: dict[str, str] = {}
        if console.settings.local_login and console.identity.can_mint:
            try:
                names = await console.directory.names(local_token())
                staff = sorted(
                    names.staff.values(),
                    key=lambda s: (
                        s.area_id or "",
                        s.district_id or "",
                        ("area_manager", "supervisor", "rep").index(s.role)
                        if s.role in ("area_manager", "supervisor", "rep")
                        else 9,
                        s.staff_id,
                    ),
                )
                areas = {a: names.area(a) for a in names.area_order}
                districts = {d: names.district(d) for d in names.districts}
            except ApiError as exc:
                problem = problem or f"{exc.service}: {exc.code}"
        return render(
            request,
            "login.html",
            status,
            staff=staff,
            areas=areas,
            districts=districts,
            department_roles=[r.value for r in DEPARTMENT_ROLES],
            next=safe_next(request.query_params.get("next")),
            problem=problem,
        )

    def local_token() -> str:
        """The console's own token for reading the staff list before anyone is signed in
        (local sign-in only)."""
        return console.identity.mint(Actor(id="console", role=Role.system), ttl_seconds=300).token

    def signed_in(viewer: Viewer, target: str) -> Response:
        response = RedirectResponse(safe_next(target), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            viewer.token,
            max_age=viewer.seconds_left(),
            httponly=True,
            samesite="lax",
            secure=console.settings.secure_cookies,
        )
        return response

    @app.post("/login")
    async def sign_in_local(request: Request) -> Response:
        form = await form_of(request)
        lang = language_of(request)
        if not csrf_ok(request, form):
            return await sign_in(request, "csrf", 403)
        if not (console.settings.local_login and console.identity.can_mint):
            return await sign_in(request, i18n.text("sign_in_proxy", lang), 403)
        staff_id = form.get("staff_id", "").strip()
        role = form.get("role", "").strip()
        hours = console.settings.session_hours
        if role:
            if role not in {r.value for r in DEPARTMENT_ROLES} or not staff_id:
                return await sign_in(request, i18n.text("staff_not_found", lang), 422)
            actor = Actor(id=staff_id[:100], role=Role(role))
        else:
            names = await console.directory.names(local_token(), missing=[("rep", staff_id)])
            member = names.staff.get(staff_id)
            if member is None:
                return await sign_in(request, i18n.text("staff_not_found", lang), 422)
            actor = Actor(id=member.staff_id, role=Role(member.role), district=member.district_id, area=member.area_id)
        viewer = console.identity.mint(actor, ttl_seconds=int(hours * 3600))
        log.info("signed_in", viewer=actor.id, role=actor.role.value, how="local")
        return signed_in(viewer, form.get("next", ""))

    @app.post("/login/token")
    async def sign_in_with_token(request: Request) -> Response:
        form = await form_of(request)
        if not csrf_ok(request, form):
            return await sign_in(request, "csrf", 403)
        try:
            viewer = console.identity.viewer(form.get("token", ""))
        except Unauthenticated as exc:
            return await sign_in(request, f"{i18n.text('sign_in_failed', language_of(request))}: {exc.code}", 401)
        log.info("signed_in", viewer=viewer.actor.id, role=viewer.actor.role.value, how="token")
        return signed_in(viewer, form.get("next", ""))

    @app.post("/logout")
    async def sign_out(request: Request) -> Response:
        form = await form_of(request)
        response = RedirectResponse("/login", status_code=303)
        if csrf_ok(request, form):
            response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/lang/{lang}")
    async def choose_language(lang: str, request: Request) -> Response:
        response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        response.set_cookie(LANG_COOKIE, i18n.language(lang), max_age=365 * 86400, samesite="lax")
        return response

    @app.get("/")
    async def home() -> Response:
        return RedirectResponse("/kpi", status_code=303)

    # -- report pages --------------------------------------------------------------------------

    def context(request: Request, viewer: Viewer, *, rows: int | None = None) -> Context:
        ctx = Context(
            viewer=viewer,
            services=console.services,
            directory=console.directory,
            lang=language_of(request),
            today=console.today(),
            zone=console.zone,
            params=dict(request.query_params),
        )
        if rows is not None:
            ctx.rows = rows
        return ctx

    async def build(ctx: Context, page: str) -> tuple[PageView, ApiError | None]:
        try:
            return await PAGES[page](ctx), None
        except ApiError as exc:
            log.info("page_refused", page=page, viewer=ctx.viewer.actor.id, status=exc.status, code=exc.code)
            view = ctx.view or PageView(page, [], ctx.filters)
            view.error = exc
            return view, exc

    def page_route(page: str) -> Callable[[Request], Awaitable[Response]]:
        async def show(request: Request) -> Response:
            viewer = viewer_of(console, request)
            if viewer is None:
                return to_sign_in(request)
            ctx = context(request, viewer)
            view, error = await build(ctx, page)
            if error is not None and error.status == 401:
                return to_sign_in(request)
            status = error.status if error is not None and 400 <= error.status < 600 else 200
            template = "content.html" if request.headers.get(PARTIAL_HEADER) else "page.html"
            return render(
                request,
                template,
                status,
                viewer=viewer,
                viewer_name=await name_of(viewer),
                page=page,
                view=view,
                csv_query=query_without(request, "table"),
            )

        return show

    def csv_route(page: str) -> Callable[[Request], Awaitable[Response]]:
        async def download(request: Request) -> Response:
            viewer = viewer_of(console, request)
            if viewer is None:
                return to_sign_in(request)
            ctx = context(request, viewer, rows=100_000)
            view, error = await build(ctx, page)
            if error is not None:
                return JSONResponse(
                    {"error": {"code": error.code, "message": error.message, "service": error.service}},
                    status_code=error.status if 400 <= error.status < 600 else 502,
                )
            wanted = request.query_params.get("table")
            table = next((t for t in view.tables if t.name == wanted), view.tables[0] if view.tables else None)
            if table is None:
                return JSONResponse({"error": {"code": "no_table", "message": "this page has no table"}}, 404)
            return csv_response(table, language_of(request))

        return download

    for page in PAGES:
        app.add_api_route(f"/{page}", page_route(page), methods=["GET"], name=page)
        app.add_api_route(f"/{page}.csv", csv_route(page), methods=["GET"], name=f"{page}_csv")

    # -- photos ---------------------------------------------------------------------------------

    @app.get("/photos/{visit_id}/{photo_id}")
    async def photo(visit_id: str, photo_id: str, request: Request) -> Response:
        """A visit's photo, fetched from the visit service with the viewer's token: the page's
        image comes from the console, so the browser needs no token of its own."""
        viewer = viewer_of(console, request)
        if viewer is None:
            return JSONResponse({"error": {"code": "missing_token", "message": "sign in"}}, status_code=401)
        path = f"/visits/{quote(visit_id, safe='')}/photos/{quote(photo_id, safe='')}"
        try:
            data, media_type = await console.services.content("visit", path, viewer.token)
        except ApiError as exc:
            return JSONResponse(
                {"error": {"code": exc.code, "message": exc.message, "service": exc.service}},
                status_code=exc.status if 400 <= exc.status < 600 else 502,
            )
        return Response(data, media_type=media_type, headers={"Cache-Control": "private, no-store"})

    # -- approvals -------------------------------------------------------------------------------

    async def approval_queues(request: Request, viewer: Viewer) -> approvals.Queues:
        return await approvals.load(
            console.services,
            console.directory,
            viewer,
            request.query_params.get("role", ""),
            datetime.now(UTC),
        )

    @app.get("/approvals")
    async def approval_page(request: Request) -> Response:
        viewer = viewer_of(console, request)
        if viewer is None:
            return to_sign_in(request)
        try:
            queues = await approval_queues(request, viewer)
        except ApiError as exc:
            if exc.status == 401:
                return to_sign_in(request)
            raise
        flash = None
        raw = request.cookies.get(FLASH_COOKIE)
        if raw:
            try:
                flash = orjson.loads(raw)
            except orjson.JSONDecodeError:
                flash = None
        template = "approvals_content.html" if request.headers.get(PARTIAL_HEADER) else "approvals.html"
        response = render(
            request,
            template,
            viewer=viewer,
            viewer_name=await name_of(viewer),
            page="approvals",
            queues=queues,
            flash=flash,
            zone=console.zone,
        )
        if raw:
            response.delete_cookie(FLASH_COOKIE)
        return response

    @app.post("/approvals/decide")
    async def approval_decision(request: Request) -> Response:
        viewer = viewer_of(console, request)
        if viewer is None:
            return to_sign_in(request)
        form = await form_of(request)
        if not csrf_ok(request, form):
            return JSONResponse({"error": {"code": "csrf", "message": "the form is stale; reload"}}, 403)
        kind, item, verb = form.get("kind", ""), form.get("id", ""), form.get("decision", "")
        if kind not in approvals.DECISIONS or verb not in ("approve", "reject") or not item:
            return JSONResponse({"error": {"code": "bad_decision", "message": "kind, id and decision"}}, 422)
        decision = approvals.Decision(kind, item, verb == "approve", form.get("reason", ""))
        flash: dict[str, Any] = {"kind": kind, "id": item, "decision": verb}
        try:
            await approvals.decide(console.services, viewer, decision)
            flash["ok"] = True
            log.info("decision_sent", viewer=viewer.actor.id, kind=kind, item=item, decision=verb)
        except ApiError as exc:
            flash.update(ok=False, status=exc.status, code=exc.code, message=exc.message[:300])
            log.info("decision_refused", viewer=viewer.actor.id, kind=kind, item=item, code=exc.code)
        role = form.get("role", "")
        response = RedirectResponse("/approvals" + (f"?{urlencode({'role': role})}" if role else ""), 303)
        response.set_cookie(FLASH_COOKIE, orjson.dumps(flash).decode(), max_age=60, httponly=True, samesite="lax")
        return response

    @app.get("/approvals.csv")
    async def approvals_csv(request: Request) -> Response:
        viewer = viewer_of(console, request)
        if viewer is None:
            return to_sign_in(request)
        lang = language_of(request)
        queues = await approval_queues(request, viewer)
        wanted = request.query_params.get("queue", "order")
        queue = next((q for q in queues.queues if q.kind == wanted), queues.queues[0])
        zone = console.zone
        rows = [
            {
                "id": item.id,
                "customer": item.customer,
                "rep": item.rep,
                "amount_fen": item.amount_fen,
                "reasons": ", ".join(i18n.term("approval_reason", r, lang) for r in item.reasons)
                or i18n.term("reason", item.detail.get("reason"), lang),
                "requested_at": item.requested_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
                if item.requested_at
                else "",
                "due_at": item.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if item.due_at else "",
                "overdue": item.overdue,
            }
            for item in queue.items
        ]
        table = Table(
            f"approvals-{queue.kind}",
            f"{queue.kind}s_awaiting",
            [
                Column("id", queue.kind),
                Column("customer", "customer"),
                Column("rep", "rep"),
                Column("amount_fen", "amount", "money"),
                Column("reasons", "approval_reasons"),
                Column("requested_at", "requested_at"),
                Column("due_at", "due_at"),
                Column("overdue", "overdue", "flag"),
            ],
            rows,
        )
        return csv_response(table, lang)

    # -- live updates ----------------------------------------------------------------------------

    @app.get("/events")
    async def events(request: Request) -> Response:
        """Server-Sent Events: `changed` when a report the page shows changed (within its
        dates), `resync` when the page should re-read everything."""
        viewer = viewer_of(console, request)
        if viewer is None:
            return JSONResponse({"error": {"code": "missing_token", "message": "sign in"}}, status_code=401)
        reports = frozenset(r for r in request.query_params.get("reports", "").split(",") if r)
        first = _day(request.query_params.get("from"))
        last = _day(request.query_params.get("to"))
        subscription = console.hub.subscribe(reports, first, last)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 3000\n\nevent: ready\ndata: {}\n\n"
                while True:
                    try:
                        notice = await asyncio.wait_for(subscription.queue.get(), HEARTBEAT_SECONDS)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if notice is None:
                        return
                    data = orjson.dumps({"report": notice.report}).decode()
                    yield f"event: {notice.kind}\ndata: {data}\n\n".encode()
            finally:
                console.hub.unsubscribe(subscription)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        viewer = viewer_of(console, request)
        return render(
            request,
            "error.html",
            exc.status if 400 <= exc.status < 600 else 502,
            viewer=viewer,
            page="",
            error=exc,
        )

    return SecurityHeaders(app)


def csv_response(table: Table, lang: str) -> Response:
    header, rows = csv_rows(table, lang)
    return Response(
        csv_text(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{table.name}.csv"', "Cache-Control": "no-store"},
    )


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None
