"""What the web UI needs from the service: the built app at `/`, its typed client kept in step
with the API, whether onboarding is due, and connection forms without server-set fields."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import Person
from tests.api.test_oauth_connect import browser, emulator  # noqa: F401 - fixtures used here
from tests.emulators.oauth_server import OAuthEmulator
from vpack.api import web
from vpack.api.app import create_app
from vpack.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PAGE = "<!doctype html><title>VPACK</title><div id=root></div>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A built app as Vite leaves it: index.html, hashed bundles in assets/, public files."""
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(PAGE)
    (root / "assets" / "index-4f2a.js").write_text("console.log('vpack')")
    (root / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the app")
    return root


@pytest.fixture
def site(dist: Path) -> TestClient:
    app = FastAPI()

    @app.get("/api/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    web.mount_web(app, dist)
    return TestClient(app)


def test_the_page_answers_every_client_route(site: TestClient) -> None:
    for path in (
        "/",
        "/sources/3",
        "/connections/7/new-source",
        "/videos?source=2",
        "/admin/import",
    ):
        page = site.get(path)
        assert page.status_code == 200 and page.text == PAGE, path
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self'


def test_files_are_served_and_bundles_cached_for_good(site: TestClient) -> None:
    bundle = site.get("/assets/index-4f2a.js")
    assert bundle.status_code == 200 and bundle.text == "console.log('vpack')"
    assert "javascript" in bundle.headers["content-type"]
    assert "immutable" in bundle.headers["cache-control"]
    icon = site.get("/favicon.svg")
    assert icon.status_code == 200 and icon.headers["cache-control"] == "no-cache"
    # A bundle of an older build is missing, not the page in disguise.
    assert site.get("/assets/index-old.js").status_code == 404


def test_nothing_outside_the_app_folder_is_served(site: TestClient) -> None:
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
        answer = site.get(path)
        assert "outside the app" not in answer.text, path


def test_the_api_keeps_its_own_answers(site: TestClient) -> None:
    assert site.get("/api/ping").json() == {"pong": "yes"}
    for method, path in (("GET", "/api/nope"), ("POST", "/api/nope"), ("GET", "/api")):
        answer = site.request(method, path)
        assert answer.status_code == 404, (method, path)
        assert answer.json() == {"detail": "Not Found"}
    assert site.post("/api/ping").status_code == 405
    assert site.post("/sources/3").status_code == 404  # the page is for reading only


def test_an_unbuilt_ui_says_how_to_build_it(tmp_path: Path) -> None:
    app = FastAPI()
    web.mount_web(app, tmp_path / "nowhere")
    answer = TestClient(app).get("/")
    assert answer.status_code == 503
    assert "make web" in answer.text and "/api/docs" in answer.text


def test_the_service_serves_the_ui_beside_its_api(
    api_settings: Settings, dist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "DEFAULT_DIST", dist)
    with TestClient(create_app(api_settings, run_worker=False)) as client:
        assert client.get("/").text == PAGE
        assert client.get("/sources/1").text == PAGE
        assert client.get("/api/health").json()["status"] == "ok"
        assert client.get("/api/sources").status_code == 401
        assert client.get("/api/nope").json() == {"detail": "Not Found"}
        assert "/{path}" not in json.dumps(client.get("/api/openapi.json").json()["paths"])


def test_setup_state_tells_the_ui_whether_to_onboard(client: TestClient) -> None:
    assert client.get("/api/setup").json() == {"needed": True}
    client.post("/api/setup", json={"email": "boss@shop.vn", "password": "long-enough"})
    assert client.get("/api/setup").json() == {"needed": False}


def test_connection_forms_leave_out_what_the_server_decides(
    client: TestClient, admin: Person, footage: Path
) -> None:
    providers = {p["name"]: p for p in client.get("/api/providers", headers=admin.auth).json()}
    # Which local folders may be read is the operator's (VPACK_LOCAL_ROOTS), not a form field.
    assert "roots" not in providers["local"]["config_schema"]["properties"]
    s3 = providers["s3"]["config_schema"]
    assert {"bucket", "access_key_id", "secret_access_key"} <= set(s3["required"])
    assert s3["properties"]["secret_access_key"]["writeOnly"] is True


def test_the_committed_api_schema_matches_the_service() -> None:
    """web/openapi.json (and the typed client made from it) must follow API changes:
    run `make api-client` and commit both files when this fails."""
    committed = json.loads((REPO / "web" / "openapi.json").read_text(encoding="utf-8"))
    current = create_app(Settings(data_dir=REPO / "data"), run_worker=False).openapi()
    assert committed == json.loads(json.dumps(current)), "web/openapi.json is stale"
    client = (REPO / "web" / "src" / "api" / "schema.d.ts").read_text(encoding="utf-8")
    for path in current["paths"]:
        assert f'"{path}"' in client, f"web/src/api/schema.d.ts lacks {path}: run make api-client"


def test_a_failed_sign_in_sends_a_browser_back_to_the_connect_page(
    browser: TestClient,  # noqa: F811 - the fixture imported above
    emulator: OAuthEmulator,  # noqa: F811
) -> None:
    started = browser.post("/api/cloud/demo_cloud/auth", json={"name": "Shop cloud"}).json()
    back = {"state": started["state"], "error": "access_denied"}
    page = browser.get(
        "/api/cloud/demo_cloud/oauth/callback",
        params=back,
        headers={"Accept": "text/html,application/xhtml+xml"},
        follow_redirects=False,
    )
    assert page.status_code == 303
    target = urlsplit(page.headers["location"])
    assert target.path == "/connect/demo_cloud"
    assert "declined" in parse_qs(target.query)["error"][0]
    # Scripts still get the JSON error.
    again = browser.post("/api/cloud/demo_cloud/auth", json={}).json()
    answer = browser.get(
        "/api/cloud/demo_cloud/oauth/callback",
        params={"state": again["state"], "error": "access_denied"},
    )
    assert answer.status_code == 400 and "declined" in answer.json()["detail"]
