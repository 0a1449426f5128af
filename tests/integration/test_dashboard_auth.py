"""The dashboard behind Airflow's own login, in Airflow's real API server app (``create_app``,
its auth manager, the plugin mounted by its plugins manager), on both engines: no credential,
a forged or expired one, or a user without the permission gets no figures; the webhook and the
customers' pages stay public; the UI lists the *Receivables* page."""

from __future__ import annotations

import sys

import pytest
from fastapi.testclient import TestClient

from receivables.config import Settings
from tests.dashboard_data import load_worked_example

FIGURE = "11,836.58"  # the worked example's outstanding in CNY (tests/dashboard_data.py)


@pytest.fixture(scope="module")
def api(airflow_db):
    """Airflow's API server app, as ``airflow api-server`` builds it (SimpleAuthManager)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,ops:viewer")
        from airflow.api_fastapi.app import create_app, get_auth_manager

        app = create_app("core")
        with TestClient(app) as client:
            yield client, get_auth_manager()


@pytest.fixture
def warehouse(home, engine, db_url, monkeypatch):
    """The worked example in this test's warehouse, which the plugin reads."""
    monkeypatch.setenv("RECEIVABLES_DB_URL", db_url)
    load_worked_example(engine, Settings.from_env().policy)
    yield engine
    _plugin_module().dispose_engines()


def _plugin_module():
    from airflow import plugins_manager

    apps, _ = plugins_manager.get_fastapi_plugins()
    sub = next(a["app"] for a in apps if a["url_prefix"] == "/receivables")
    endpoint = next(r.endpoint for r in sub.routes if getattr(r, "path", "") == "/dashboard")
    return sys.modules[endpoint.__module__]


def _token(auth_manager, role: str | None, **kwargs) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username="ops", role=role), **kwargs)


def test_without_a_login_there_is_no_data_only_airflows_login(api, warehouse):
    client, _ = api
    client.cookies.clear()

    answer = client.get("/receivables/dashboard?as_of=2025-06-30")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert FIGURE not in answer.text

    browser = client.get(
        "/receivables/dashboard?as_of=2025-06-30",
        headers={"Accept": "text/html,application/xhtml+xml"},
        follow_redirects=False,
    )
    assert browser.status_code == 303
    assert browser.headers["location"] == (
        "/auth/login?next=%2Freceivables%2Fdashboard%3Fas_of%3D2025-06-30"
    )
    assert FIGURE not in browser.text
    assert client.get("/receivables/dashboard/data-docs/index.html").status_code == 401


def test_a_forged_or_expired_token_is_no_login(api, warehouse):
    client, auth_manager = api
    client.cookies.clear()
    expired = _token(auth_manager, "viewer", expiration_time_in_seconds=-3600)
    valid = _token(auth_manager, "viewer")
    forged = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")

    for token in ("garbage", forged, expired):
        answer = client.get("/receivables/dashboard", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, token
        assert FIGURE not in answer.text
    client.cookies.set("_token", forged)
    assert client.get("/receivables/dashboard").status_code == 401
    client.cookies.clear()


def test_a_user_without_access_to_the_ui_is_forbidden(api, warehouse):
    client, auth_manager = api
    client.cookies.clear()

    answer = client.get(
        "/receivables/dashboard",
        headers={"Authorization": f"Bearer {_token(auth_manager, None)}"},
    )

    assert answer.status_code == 403
    assert FIGURE not in answer.text


def test_a_viewer_sees_the_figures_by_token_or_by_the_uis_cookie(api, warehouse):
    client, auth_manager = api
    token = _token(auth_manager, "viewer")

    by_token = client.get("/receivables/dashboard", headers={"Authorization": f"Bearer {token}"})
    assert by_token.status_code == 200
    assert "Receivables" in by_token.text
    assert f'<span class="num">{FIGURE}</span>' in by_token.text
    assert "8,623.81" in by_token.text
    csp = by_token.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in csp  # the Airflow UI frames it; nobody else
    assert "default-src 'none'" in csp
    assert by_token.headers["cache-control"] == "no-store"

    client.cookies.set("_token", token)
    try:
        by_cookie = client.get("/receivables/dashboard?as_of=2025-05-31")
        assert by_cookie.status_code == 200
        assert "10,080.25" in by_cookie.text  # the worked example's 05-31 in CNY
        missing = client.get("/receivables/dashboard?as_of=2025-06-28")
        assert missing.status_code == 404
        assert "receivables run --as-of 2025-06-28" in missing.text
        assert client.get("/receivables/dashboard?as_of=30.6.2025").status_code == 400
    finally:
        client.cookies.clear()


def test_the_data_docs_are_served_sandboxed_and_only_from_their_folder(api, warehouse, home):
    client, auth_manager = api
    docs = Settings.from_env().data_docs_index
    docs.parent.mkdir(parents=True)
    docs.write_text("<html><body>GX index</body></html>", encoding="utf-8")
    (home / "secret.txt").write_text("secret", encoding="utf-8")
    headers = {"Authorization": f"Bearer {_token(auth_manager, 'viewer')}"}

    page = client.get("/receivables/dashboard/data-docs/index.html", headers=headers)
    assert page.status_code == 200
    assert "GX index" in page.text
    assert page.headers["content-security-policy"].startswith("sandbox allow-scripts")
    # percent-encoded: a client normalises a plain ../ away before it is sent
    for hostile in ("%2e%2e/%2e%2e/%2e%2e/secret.txt", "..%2f..%2f..%2fsecret.txt", "missing.html"):
        answer = client.get(f"/receivables/dashboard/data-docs/{hostile}", headers=headers)
        assert answer.status_code == 404, hostile
        assert "secret" not in answer.text
    dashboard = client.get("/receivables/dashboard", headers=headers)
    assert 'href="dashboard/data-docs/index.html"' in dashboard.text


def test_the_webhook_and_the_customers_pages_stay_public(api, warehouse):
    client, _ = api
    client.cookies.clear()

    assert client.get("/receivables/preferences/1.forged").status_code == 404  # its own 404
    assert client.post("/receivables/sendgrid/events", content=b"[]").status_code == 503
    icon = client.get("/receivables/icon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"


def test_the_ui_lists_the_receivables_page(api):
    client, auth_manager = api
    answer = client.get(
        "/api/v2/plugins", headers={"Authorization": f"Bearer {_token(auth_manager, 'viewer')}"}
    )

    assert answer.status_code == 200
    (plugin,) = [p for p in answer.json()["plugins"] if p["name"] == "receivables"]
    assert plugin["external_views"] == [
        {
            "name": "Receivables",
            "href": "receivables/dashboard",
            "url_route": "receivables",
            "destination": "nav",
            "nav_top_level": True,
            "icon": "receivables/icon.svg",
            "icon_dark_mode": None,
            "category": None,
        }
    ]
