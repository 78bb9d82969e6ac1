"""Setup, sign-in, sessions, CSRF, disabling users and the login rate limit."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, Person, login
from vpack.api.app import create_app
from vpack.settings import Settings


def test_setup_only_once(client: TestClient) -> None:
    first = client.post("/api/setup", json={"email": "Boss@Shop.vn", "password": "long-enough"})
    assert first.status_code == 201 and first.json()["role"] == "admin"
    assert first.json()["email"] == "boss@shop.vn"
    again = client.post("/api/setup", json={"email": "x@y.vn", "password": "long-enough"})
    assert again.status_code == 409 and "already" in again.json()["detail"]


def test_setup_refuses_weak_or_malformed_input(client: TestClient) -> None:
    short = client.post("/api/setup", json={"email": "a@b.vn", "password": "short"})
    assert short.status_code == 400 and "at least 8" in short.json()["detail"]
    bad_email = client.post("/api/setup", json={"email": "nobody", "password": "long-enough"})
    assert bad_email.status_code == 422
    extra = client.post(
        "/api/setup", json={"email": "a@b.vn", "password": "long-enough", "role": "admin"}
    )
    assert extra.status_code == 422


def test_login_gives_token_and_cookies(client: TestClient, admin: Person) -> None:
    response = client.post("/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
    body = response.json()
    assert response.status_code == 200 and body["token_type"] == "bearer" and body["expires_at"]
    cookie = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookie if c.startswith("vpack_session="))
    assert "HttpOnly" in session_cookie and "samesite=lax" in session_cookie.lower()
    assert client.get("/api/auth/me").json()["email"] == ADMIN[0]  # cookie works
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["role"] == "admin"


def test_wrong_password_and_unknown_account_look_the_same(
    client: TestClient, admin: Person
) -> None:
    wrong = client.post("/api/auth/login", json={"email": ADMIN[0], "password": "nope-nope"})
    unknown = client.post("/api/auth/login", json={"email": "who@x.vn", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_five_failures_a_minute_then_429(client: TestClient, admin: Person) -> None:
    for _ in range(5):
        bad = client.post("/api/auth/login", json={"email": ADMIN[0], "password": "wrong-pw"})
        assert bad.status_code == 401
    blocked = client.post("/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    # The IP is blocked too, whatever account it tries next.
    other = client.post("/api/auth/login", json={"email": "else@x.vn", "password": "x"})
    assert other.status_code == 429


def test_account_limit_holds_across_ips(api_settings: Settings) -> None:
    app = create_app(api_settings, run_worker=False)
    with TestClient(app) as first, TestClient(app, client=("10.9.9.9", 1234)) as second:
        first.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
        for _ in range(5):
            first.post("/api/auth/login", json={"email": ADMIN[0], "password": "wrong-pw"})
        blocked = second.post("/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
        assert blocked.status_code == 429


def test_logout_clears_the_cookie(client: TestClient, admin: Person) -> None:
    login(client, *ADMIN)
    csrf = client.cookies["vpack_csrf"]
    out = client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert client.get("/api/auth/me").status_code == 401


def test_cookie_sessions_need_the_csrf_header_to_change_things(
    client: TestClient, admin: Person
) -> None:
    login(client, *ADMIN)
    forged = client.post("/api/users", json={"email": "x@y.vn", "password": "long-enough"})
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["detail"]
    wrong = client.post(
        "/api/users",
        json={"email": "x@y.vn", "password": "long-enough"},
        headers={"X-CSRF-Token": "guess"},
    )
    assert wrong.status_code == 403
    good = client.post(
        "/api/users",
        json={"email": "x@y.vn", "password": "long-enough"},
        headers={"X-CSRF-Token": client.cookies["vpack_csrf"]},
    )
    assert good.status_code == 201
    assert client.get("/api/users").status_code == 200  # reads need no token


def test_expired_sessions_are_refused(api_settings: Settings) -> None:
    short = api_settings.model_copy(update={"session_hours": 1e-9})
    with TestClient(create_app(short, run_worker=False)) as client:
        client.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
        token = login(client, *ADMIN)
        client.cookies.clear()
        me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401 and "expired" in me.json()["detail"]


def test_tampered_token_is_refused(client: TestClient, admin: Person) -> None:
    forged = admin.token[:-4] + ("AAAA" if not admin.token.endswith("AAAA") else "BBBB")
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )
    assert client.get("/api/auth/me", headers={"Authorization": "Bearer"}).status_code == 401


def test_disabled_users_lose_their_sessions_at_once(
    client: TestClient, admin: Person, make_user: Callable[[str], Person]
) -> None:
    staff = make_user("staff")
    assert client.get("/api/auth/me", headers=staff.auth).status_code == 200
    off = client.patch(f"/api/users/{staff.id}", json={"disabled": True}, headers=admin.auth)
    assert off.status_code == 200 and off.json()["disabled"]
    assert client.get("/api/auth/me", headers=staff.auth).status_code == 401
    relogin = client.post(
        "/api/auth/login", json={"email": staff.email, "password": staff.password}
    )
    assert relogin.status_code == 401
    client.patch(f"/api/users/{staff.id}", json={"disabled": False}, headers=admin.auth)
    assert login(client, staff.email, staff.password)


def test_users_admin_only(
    client: TestClient, admin: Person, make_user: Callable[[str], Person]
) -> None:
    staff = make_user("staff")
    assert client.get("/api/users", headers=staff.auth).status_code == 403
    assert (
        client.post(
            "/api/users", json={"email": "z@z.vn", "password": "long-enough"}, headers=staff.auth
        ).status_code
        == 403
    )
    listed = client.get("/api/users", headers=admin.auth).json()
    assert [u["email"] for u in listed] == [ADMIN[0], staff.email]
    dup = client.post(
        "/api/users", json={"email": staff.email.upper(), "password": "x" * 9}, headers=admin.auth
    )
    assert dup.status_code == 409
    assert (
        client.patch("/api/users/999", json={"disabled": True}, headers=admin.auth).status_code
        == 404
    )
    self_off = client.patch(f"/api/users/{admin.id}", json={"disabled": True}, headers=admin.auth)
    assert self_off.status_code == 400


def test_audit_records_sign_ins(client: TestClient, admin: Person) -> None:
    client.post("/api/auth/login", json={"email": ADMIN[0], "password": "wrong-pw"})
    events = client.get("/api/audit", headers=admin.auth).json()["items"]
    actions = [e["action"] for e in events]
    assert {"user_created", "login", "login_failed"} <= set(actions)
    failed = next(e for e in events if e["action"] == "login_failed")
    assert failed["ip"] and failed["detail"]["email"] == ADMIN[0]
    assert "wrong-pw" not in str(events)
