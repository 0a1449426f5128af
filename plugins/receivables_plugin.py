"""The project's Airflow plugin: SendGrid's Event Webhook and the customers' self-service pages.

Airflow's API server mounts :data:`app` under ``/receivables`` (``fastapi_apps``):

* ``POST /receivables/sendgrid/events`` — SendGrid's signed Event Webhook. The signature is
  checked against ``RECEIVABLES_SENDGRID_WEBHOOK_KEY`` (the verification key of the webhook's
  settings in SendGrid) before anything is read; the events are then recorded once each
  (:func:`receivables.collection.events.record_events`).
* ``GET /receivables/preferences/{token}`` — the opt-out page of a reminder; ``POST`` opts out
  (also RFC 8058 one-click: ``List-Unsubscribe=One-Click``). A ``GET`` never changes anything:
  mail scanners open links before people do.
* ``GET /receivables/feedback/{token}`` — the dispute and feedback form; ``POST`` records it.
* ``GET /receivables/dashboard`` — the operations dashboard (``?as_of=YYYY-MM-DD``, default the
  latest computed date), shown in the Airflow UI as *Receivables* (``external_views``: an iframe
  at ``/plugin/receivables``); ``GET /receivables/dashboard/data-docs/…`` serves the Great
  Expectations data docs it links to.

The webhook and the customers' pages are reached by SendGrid and by customers, not by Airflow
users, so they are not behind Airflow's login: the webhook is authenticated by its signature,
each page by the unforgeable token in its link (:mod:`receivables.collection.links`). The
dashboard and the data docs are for Airflow users only: they take Airflow's own authentication
(:func:`airflow_user`: the ``_token`` cookie of the UI's login or an ``Authorization: Bearer``
JWT, validated by the configured auth manager) and its permission to see the Airflow website.
The app only calls the ``receivables`` package; the warehouse is the one
``Settings.from_env().warehouse_url()`` names.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from typing import Annotated, Any, ClassVar
from urllib.parse import parse_qs

import sqlalchemy as sa
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

# The receivables package is imported inside the handlers: Airflow imports every plugin in each
# of its processes (scheduler, DAG processor, workers), and only the API server serves these.

log = logging.getLogger(__name__)

WEBHOOK_KEY_ENV = "RECEIVABLES_SENDGRID_WEBHOOK_KEY"
#: SendGrid batches events into requests of a few hundred kB; anything this big is not it.
MAX_WEBHOOK_BYTES = 5 * 1024 * 1024
#: A feedback form: 4,000 characters of text, percent-encoded, with room to spare.
MAX_FORM_BYTES = 64 * 1024
#: Sent with every page: nothing loads from elsewhere, nothing runs, forms post only here, the
#: page cannot be framed, and the token in the address never leaks through a Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}
#: The dashboard: the same, except that the Airflow UI (this origin) shows it in its iframe.
DASHBOARD_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'self'; base-uri 'none'"
)
#: Great Expectations' data docs load their styles and scripts from these CDNs (GX's own page
#: templates). They run sandboxed: in a unique origin, so no script of theirs can act as the
#: signed-in Airflow user, and they post nothing anywhere.
DATA_DOCS_HOSTS = (
    "https://cdn.jsdelivr.net https://cdnjs.cloudflare.com https://code.jquery.com "
    "https://maxcdn.bootstrapcdn.com https://stackpath.bootstrapcdn.com https://unpkg.com"
)
DATA_DOCS_CSP = (
    "sandbox allow-scripts allow-popups; default-src 'none'; "
    f"script-src 'self' 'unsafe-inline' {DATA_DOCS_HOSTS}; "
    f"style-src 'self' 'unsafe-inline' {DATA_DOCS_HOSTS}; "
    f"font-src 'self' data: {DATA_DOCS_HOSTS}; img-src 'self' data:; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'"
)

app = FastAPI(
    title="Receivables",
    description="SendGrid Event Webhook, the customers' self-service pages, the dashboard",
    # the routes are public; their description is nobody's business
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)

_engines: dict[str, Any] = {}
_engines_lock = threading.Lock()


class _Unavailable(Exception):
    """The warehouse or the configuration cannot serve the request now (answer 503)."""


def warehouse():
    """The warehouse engine, one per URL for the life of the process."""
    from receivables.config import ConfigError, Settings
    from receivables.warehouse.db import create_engine

    try:
        url = Settings.from_env().warehouse_url()
        with _engines_lock:
            engine = _engines.get(url)
            if engine is None:
                # hide_parameters: a database error must not put addresses into the log
                engine = _engines[url] = create_engine(url, hide_parameters=True)
    except (ConfigError, ValueError, RuntimeError) as exc:
        raise _Unavailable(type(exc).__name__) from exc
    return engine


def dispose_engines() -> None:
    """Close every cached warehouse engine (tests; a process that shuts down)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


async def _call(function, *args):
    """Run blocking warehouse work off the event loop; database trouble becomes 503."""
    from receivables.warehouse.db import WarehouseUnavailable

    try:
        return await run_in_threadpool(function, *args)
    except (WarehouseUnavailable, sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        log.error("receivables plugin: warehouse unavailable (%s)", type(exc).__name__)
        raise _Unavailable(type(exc).__name__) from exc


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than ``limit`` (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@app.middleware("http")
async def _security_headers(request: Request, call_next):
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


# --- the Event Webhook ---------------------------------------------------------------------


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@app.post("/sendgrid/events")
async def sendgrid_events(request: Request) -> Response:
    """SendGrid's Event Webhook: verify, parse, record; answer the counts."""
    from receivables.collection.events import (
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        WebhookKeyError,
        record_events,
        verify,
    )

    key = os.environ.get(WEBHOOK_KEY_ENV, "").strip()
    if not key:
        # 503, not 200: SendGrid keeps the events and retries once we are configured
        return _error(
            503,
            f"the Event Webhook is not configured: set {WEBHOOK_KEY_ENV} to the verification "
            "key of SendGrid's signed Event Webhook",
        )
    body = await _read_body(request, MAX_WEBHOOK_BYTES)
    if body is None:
        return _error(413, f"request body larger than {MAX_WEBHOOK_BYTES} bytes")
    try:
        reason = verify(
            key,
            body,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            time.time(),
        )
    except WebhookKeyError as exc:
        log.error("event webhook: %s", exc)
        return _error(503, f"{WEBHOOK_KEY_ENV}: {exc}")
    if reason is not None:
        log.warning("event webhook: request refused (%s)", reason)
        return _error(403, reason)
    try:
        events = json.loads(body)
    except (ValueError, RecursionError):
        return _error(400, "the body is not JSON")
    if not isinstance(events, list):
        return _error(400, "expected a JSON array of events")
    try:
        counts = await _call(record_events, warehouse(), events, dt.datetime.now(dt.UTC))
    except _Unavailable:
        # SendGrid retries what it could not deliver: nothing is lost by refusing now
        return _error(503, "the warehouse is unavailable; try again later")
    return JSONResponse(counts)


# --- the self-service pages ----------------------------------------------------------------


def _page(name: str, status: int = 200, locale: str = "en", **context: Any) -> HTMLResponse:
    from receivables.render import render

    return HTMLResponse(
        render(
            f"selfservice/{name}.html",
            lang=locale,
            zh=locale == "zh-CN",
            team=context.pop("team", None) or _team(locale),
            **context,
        ),
        status_code=status,
    )


def _team(locale: str) -> dict[str, str] | None:
    """Whom the customer can write to or call (the strategy's contact details)."""
    from receivables.config import ConfigError, Settings

    try:
        details = Settings.from_env().strategy.contact_details
    except (ConfigError, ValueError):
        return None
    return {
        "name": details.team_name.get(locale) or details.team_name.get("en", ""),
        "email": details.team_email,
        "phone": details.team_phone,
    }


def _not_found() -> HTMLResponse:
    return _page("not_found", 404)


def _unavailable() -> HTMLResponse:
    return _page("unavailable", 503)


def _date(day: dt.date, locale: str) -> str:
    from babel.dates import format_date

    return format_date(day, format="long", locale="zh_CN" if locale == "zh-CN" else "en")


def _reminder(token: str) -> int | None:
    from receivables.collection.links import reminder_of
    from receivables.config import Settings

    return reminder_of(Settings.from_env(), token)


async def _context(token: str):
    """The reminder a token names and what its pages show; None for a forged or unknown one."""
    from receivables.collection.selfservice import page_context
    from receivables.config import ConfigError

    try:
        reminder_id = await run_in_threadpool(_reminder, token)
    except (ConfigError, OSError) as exc:  # no usable link secret: nothing can be checked
        log.error("self-service: link secret unusable (%s)", type(exc).__name__)
        raise _Unavailable(type(exc).__name__) from exc
    if reminder_id is None:
        return None
    return await _call(page_context, warehouse(), reminder_id)


def _links(token: str) -> dict[str, str]:
    # relative: the pages work at whatever address the API server is reached
    return {"feedback_href": f"../feedback/{token}", "preferences_href": f"../preferences/{token}"}


@app.get("/preferences/{token}", response_class=HTMLResponse)
async def preferences_page(token: str) -> HTMLResponse:
    """The opt-out page. Changes nothing: the button posts."""
    try:
        page = await _context(token)
    except _Unavailable:
        return _unavailable()
    if page is None:
        return _not_found()
    return _page(
        "preferences",
        locale=page.locale,
        page=page,
        planned_on=_date(page.planned_on, page.locale),
        **_links(token),
    )


@app.post("/preferences/{token}", response_class=HTMLResponse)
async def preferences_opt_out(token: str) -> HTMLResponse:
    """Opt out: from the page's button, or RFC 8058 one-click (``List-Unsubscribe=One-Click``)
    from the mail client. Any POST to a genuine token opts out; the body is not needed."""
    from receivables.collection.selfservice import opt_out

    try:
        page = await _context(token)
        if page is None:
            return _not_found()
        addresses = await _call(opt_out, warehouse(), page.reminder_id, dt.datetime.now(dt.UTC))
    except _Unavailable:
        return _unavailable()
    log.info("self-service: reminder %d opted out (%d addresses)", page.reminder_id, addresses)
    return _page("opted_out", locale=page.locale, **_links(token))


def _feedback_form(page, token: str, status: int = 200, **form: Any) -> HTMLResponse:
    from receivables.collection.selfservice import MAX_MESSAGE_LENGTH

    return _page(
        "feedback",
        status,
        locale=page.locale,
        page=page,
        planned_on=_date(page.planned_on, page.locale),
        max_length=MAX_MESSAGE_LENGTH,
        error=form.get("error"),
        kind=form.get("kind"),
        message=form.get("message", ""),
        **_links(token),
    )


@app.get("/feedback/{token}", response_class=HTMLResponse)
async def feedback_page(token: str) -> HTMLResponse:
    """The dispute and feedback form."""
    try:
        page = await _context(token)
    except _Unavailable:
        return _unavailable()
    if page is None:
        return _not_found()
    return _feedback_form(page, token)


_FORM_ERRORS = {
    "kind": {"en": "Please choose what your message is about.", "zh-CN": "请选择留言类型。"},
    "message": {"en": "Please write your message.", "zh-CN": "请写下您的留言。"},
}


@app.post("/feedback/{token}", response_class=HTMLResponse)
async def feedback_submit(token: str, request: Request) -> HTMLResponse:
    """Record a dispute or feedback (a form post: ``kind``, ``message``); thank the customer."""
    from receivables.collection.selfservice import FEEDBACK_KINDS, record_feedback

    try:
        page = await _context(token)
    except _Unavailable:
        return _unavailable()
    if page is None:
        return _not_found()
    body = await _read_body(request, MAX_FORM_BYTES)
    if body is None:
        return _page("too_large", 413)
    try:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    except ValueError:
        form = {}
    kind = (form.get("kind") or [""])[0]
    message = (form.get("message") or [""])[0]
    if kind not in FEEDBACK_KINDS:
        error = _FORM_ERRORS["kind"][page.locale]
        return _feedback_form(page, token, 400, error=error, message=message)
    try:
        feedback_id = await _call(
            record_feedback, warehouse(), page.reminder_id, kind, message, dt.datetime.now(dt.UTC)
        )
    except _Unavailable:
        return _unavailable()
    except ValueError:
        error = _FORM_ERRORS["message"][page.locale]
        return _feedback_form(page, token, 400, error=error, kind=kind, message=message)
    except LookupError:  # the reminder went away between the page and the post
        return _not_found()
    log.info("self-service: %s %d recorded for reminder %d", kind, feedback_id, page.reminder_id)
    return _page("thanks", locale=page.locale, kind=kind)


# --- the operations dashboard (Airflow users only) -----------------------------------------


class _SignInRequired(Exception):
    """The request carries no valid Airflow credential."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


_bearer = HTTPBearer(auto_error=False)


async def airflow_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Any:
    """The signed-in Airflow user, by Airflow's own dependency: ``get_user`` of the API server
    (an ``Authorization: Bearer`` JWT, else the ``_token`` cookie the UI's login sets, each
    validated by the configured auth manager), then ``requires_access_view(WEBSITE)`` — whoever
    may see the Airflow UI may see the dashboard. No credential, or an invalid or expired one:
    :class:`_SignInRequired` (a browser goes to Airflow's login, anything else gets 401); a user
    without that permission: 403.

    Imported here, not at the top: Airflow imports this plugin in all its processes, and only
    the API server needs its security module."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import get_user, requires_access_view

    try:
        user = await get_user(request, bearer_credentials=credentials)
    except HTTPException as exc:
        raise _SignInRequired(str(exc.detail)) from None
    requires_access_view(AccessView.WEBSITE)(request, user)
    return user


AirflowUser = Annotated[Any, Depends(airflow_user)]


@app.exception_handler(_SignInRequired)
async def _sign_in(request: Request, exc: _SignInRequired) -> Response:
    """A browser is sent to Airflow's login page, and back here after it; others get 401."""
    if "text/html" in request.headers.get("accept", ""):
        from airflow.api_fastapi.app import get_auth_manager

        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(get_auth_manager().get_url_login(next_url=back), status_code=303)
    return JSONResponse(
        {"detail": exc.detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )


#: Where the page's form and its data docs links point, relative to ``/receivables/dashboard``.
_PAGE_LINKS = {"form_action": "dashboard", "data_docs_base": "dashboard/data-docs/"}


def _dashboard_html(day: dt.date | None, asked: str) -> tuple[int, str]:
    """(status, page) of the dashboard of ``day`` (None: the latest computed date)."""
    from receivables import dashboard
    from receivables.config import Settings

    settings = Settings.from_env()
    try:
        built = dashboard.build(warehouse(), settings.policy, day, settings.data_docs_index)
    except dashboard.NoSnapshot as exc:
        status = 404 if day is not None else 200
        return status, dashboard.page_html(None, message=str(exc), asked=asked, **_PAGE_LINKS)
    return 200, dashboard.page_html(built, **_PAGE_LINKS)


def _dashboard_response(status: int, page: str) -> HTMLResponse:
    return HTMLResponse(
        page, status_code=status, headers={"Content-Security-Policy": DASHBOARD_CSP}
    )


@app.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(_user: AirflowUser, as_of: str = "") -> HTMLResponse:
    """The operations dashboard of ``as_of`` (``YYYY-MM-DD``; empty: the latest computed)."""
    from receivables import dashboard
    from receivables.config import ConfigError

    asked = as_of.strip()
    try:
        day = dt.date.fromisoformat(asked) if asked else None
    except ValueError:
        message = f"{asked[:40]!r} is not a date: expected YYYY-MM-DD"
        return _dashboard_response(400, dashboard.page_html(None, message=message, **_PAGE_LINKS))
    try:
        status, page = await _call(_dashboard_html, day, asked)
    except (_Unavailable, ConfigError):
        message = "The warehouse or the configuration cannot be read now; try again in a moment."
        return _dashboard_response(503, dashboard.page_html(None, message=message, **_PAGE_LINKS))
    return _dashboard_response(status, page)


@app.get("/dashboard/data-docs/{path:path}")
async def data_docs(path: str, _user: AirflowUser) -> Response:
    """A file of the Great Expectations data docs (``$RECEIVABLES_HOME/gx/…/local_site``),
    sandboxed (see :data:`DATA_DOCS_CSP`); nothing outside that folder."""
    from receivables.config import ConfigError, Settings
    from receivables.dashboard import data_docs_file

    try:
        root = Settings.from_env().data_docs_index.parent
    except ConfigError:
        return _error(503, "the configuration cannot be read")
    found = await run_in_threadpool(data_docs_file, root, path)
    if found is None:
        return _error(404, "no such page in the data docs")
    return FileResponse(found, headers={"Content-Security-Policy": DATA_DOCS_CSP})


#: The menu icon of the *Receivables* page in the Airflow UI (public: it is only a picture).
ICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#017cee" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
    '<rect x="3" y="3" width="18" height="18" rx="2"/><path d="M7 16v-3M12 16V8M17 16v-6"/></svg>'
)


@app.get("/icon.svg")
async def icon() -> Response:
    """The page's icon in Airflow's navigation bar."""
    return Response(
        ICON_SVG, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
    )


class ReceivablesPlugin(AirflowPlugin):
    """Registers the webhook, the self-service pages and the dashboard with Airflow's API
    server, and the dashboard as the *Receivables* page of the Airflow UI."""

    name = "receivables"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": app, "url_prefix": "/receivables", "name": "Receivables"}
    ]
    # An external view with a url_route is shown inside the UI (an iframe at /plugin/receivables);
    # the addresses are relative to the UI's base URL, so a deployment under a path works too.
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Receivables",
            "href": "receivables/dashboard",
            "url_route": "receivables",
            "destination": "nav",
            "nav_top_level": True,
            "icon": "receivables/icon.svg",
        }
    ]
