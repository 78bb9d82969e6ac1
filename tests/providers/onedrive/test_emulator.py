"""The OneDrive emulator speaks the identity platform and Graph as Microsoft's own clients expect.

MSAL (Microsoft's auth library) runs the sign-in against it over TLS; Graph calls are made
with `requests` as Microsoft's Python samples make them (a bearer header, following
`@odata.nextLink` verbatim); raw httpx looks at error bodies and headers; PyPI's
quickxorhash checks the hashes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msal
import pytest
import quickxorhash
import requests
import trustme

from tests.providers.onedrive.emulator import MSA_TENANT, OneDriveEmulator
from tests.providers.onedrive.quickxor import QuickXorHash
from tests.providers.onedrive.quickxor import quickxorhash as our_quickxorhash

CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
SECRET = "emulated~secret"
REDIRECT = "http://localhost:8000/api/cloud/onedrive/oauth/callback"
SCOPES = ["Files.Read", "User.Read"]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A trustme CA and a certificate for 127.0.0.1: (ca bundle, cert chain, key)."""
    folder = tmp_path_factory.mktemp("onedrive-tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    bundle, chain, key = folder / "ca.pem", folder / "chain.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(bundle))
    issued.private_key_pem.write_to_path(str(key))
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(chain), append=True)
    return bundle, chain, key


def _emulator(tls: tuple[Path, Path, Path], **options: Any) -> OneDriveEmulator:
    return OneDriveEmulator(
        client_id=CLIENT_ID, redirect_uris=[REDIRECT], tls=(tls[1], tls[2]), **options
    )


@pytest.fixture
def od(tls: tuple[Path, Path, Path]) -> Iterator[OneDriveEmulator]:
    with _emulator(tls) as server:
        yield server


@pytest.fixture
def business(tls: tuple[Path, Path, Path]) -> Iterator[OneDriveEmulator]:
    with _emulator(tls, account="business", email="owner@contoso.com") as server:
        yield server


@pytest.fixture
def work(tls: tuple[Path, Path, Path]) -> Iterator[OneDriveEmulator]:
    """A work account whose app registration is a confidential client (with a secret)."""
    with _emulator(
        tls, account="business", client_secret=SECRET, email="owner@contoso.com"
    ) as server:
        yield server


@pytest.fixture
def session(tls: tuple[Path, Path, Path]) -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.verify = str(tls[0])
        http.trust_env = False  # REQUESTS_CA_BUNDLE would win over verify (requests#3829)
        yield http


@pytest.fixture
def raw(tls: tuple[Path, Path, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(tls[0]))) as client:
        yield client


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_in(
    od: OneDriveEmulator,
    raw: httpx.Client,
    *,
    tenant: str = "common",
    scope: str = "Files.Read User.Read offline_access",
    verifier: str | None = None,
) -> dict[str, Any]:
    """A browser's authorize round trip and the code exchange, by hand (RFC 7636 S256)."""
    query = authorize(od, raw, tenant=tenant, scope=scope, verifier=verifier)
    answer = exchange(od, raw, query["code"][0], verifier or _VERIFIER, tenant=tenant)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


_VERIFIER, _CHALLENGE = pkce()


def authorize(
    od: OneDriveEmulator,
    raw: httpx.Client,
    *,
    tenant: str = "common",
    scope: str = "Files.Read User.Read offline_access",
    verifier: str | None = None,
) -> dict[str, list[str]]:
    challenge = _CHALLENGE if verifier is None else pkce_challenge(verifier)
    answer = raw.get(
        od.authorize_url(tenant),
        params={
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": "st4te",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["st4te"]
    return query


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def exchange(
    od: OneDriveEmulator, raw: httpx.Client, code: str, verifier: str, *, tenant: str = "common"
) -> httpx.Response:
    return raw.post(
        od.token_url(tenant),
        data={
            "client_id": CLIENT_ID,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )


def refresh(od: OneDriveEmulator, raw: httpx.Client, token: str) -> httpx.Response:
    return raw.post(
        od.token_url(),
        data={"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": token},
    )


def aad_error(answer: httpx.Response, code: int) -> dict[str, Any]:
    """The identity platform's error body, with its AADSTS code."""
    body: dict[str, Any] = answer.json()
    assert body["error_codes"] == [code], body
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)
    assert answer.headers["cache-control"] == "no-store"
    return body


def graph_error(answer: httpx.Response | requests.Response, status: int, code: str) -> Any:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and "message" in error
    inner = error["innerError"]
    assert {"date", "request-id", "client-request-id"} <= set(inner)
    assert answer.headers["request-id"] == inner["request-id"]
    return error


@pytest.fixture
def graph(od: OneDriveEmulator, raw: httpx.Client, session: requests.Session) -> requests.Session:
    """A requests session with a bearer token, as Microsoft's Python samples use Graph."""
    session.headers["Authorization"] = "Bearer " + sign_in(od, raw)["access_token"]
    return session


def all_pages(session: requests.Session, url: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """Follow @odata.nextLink verbatim; return the items and every page."""
    items, pages = [], []
    next_url: str | None = url
    while next_url:
        page = session.get(next_url)
        assert page.status_code == 200, page.text
        pages.append(page.json())
        items.extend(page.json()["value"])
        next_url = page.json().get("@odata.nextLink")
    return items, pages


# ---------------------------------------------------------------- identity platform (MSAL)


def msal_app(
    od: OneDriveEmulator, session: requests.Session, tenant: str = "consumers", **options: Any
) -> msal.PublicClientApplication:
    # MSAL takes only https authorities, and asks login.microsoftonline.com whether an
    # unknown host is an authority unless instance discovery is off.
    return msal.PublicClientApplication(
        CLIENT_ID,
        authority=od.authority(tenant),
        instance_discovery=False,
        http_client=session,
        **options,
    )


def msal_sign_in(app: msal.ClientApplication, http: requests.Session) -> dict[str, Any]:
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    assert "code_challenge_method=S256" in flow["auth_uri"]
    browser = http.get(flow["auth_uri"], allow_redirects=False)
    assert browser.status_code == 302
    answer = {k: v[0] for k, v in parse_qs(urlsplit(browser.headers["location"]).query).items()}
    result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, answer)
    return result


# MSAL warns that form_post is safer than the query response mode the emulator answers.
_QUERY_MODE = pytest.mark.filterwarnings("ignore:response_mode='form_post':UserWarning")


@_QUERY_MODE
def test_msal_code_flow_with_pkce_and_refresh_token_rotation(
    od: OneDriveEmulator, session: requests.Session
) -> None:
    app = msal_app(od, session)
    result = msal_sign_in(app, session)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == "owner@example.com"
    assert result["id_token_claims"]["tid"] == MSA_TENANT  # a personal account
    exchanged = od.token_requests[-1]
    assert exchanged["code_verifier"] and exchanged["client_info"] == "1"

    # Microsoft's sample: requests.get(endpoint, headers={'Authorization': 'Bearer ' + token})
    me = session.get(
        f"{od.graph_url}/me", headers={"Authorization": "Bearer " + result["access_token"]}
    )
    assert me.status_code == 200 and me.json()["userPrincipalName"] == "owner@example.com"

    first = result["refresh_token"]
    renewed = app.acquire_token_by_refresh_token(first, SCOPES)
    assert renewed["refresh_token"] != first  # a new one on every refresh
    assert not od.refresh_token_is_active(first)
    again = app.acquire_token_by_refresh_token(first, SCOPES)
    assert again["error"] == "invalid_grant" and again["error_codes"] == [70000]

    account = app.get_accounts()[0]
    assert account["username"] == "owner@example.com"
    silent = app.acquire_token_silent(SCOPES, account, force_refresh=True)
    assert silent is not None and "access_token" in silent  # from the cached newest token

    od.revoke_refresh_tokens()
    refused = app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert refused is not None and refused["error_codes"] == [50173]
    still = {"Authorization": "Bearer " + silent["access_token"]}
    assert session.get(f"{od.graph_url}/me", headers=still).status_code == 200  # until it expires


@_QUERY_MODE
def test_msal_without_offline_access_gets_no_refresh_token(
    od: OneDriveEmulator, session: requests.Session
) -> None:
    app = msal_app(od, session, tenant="common", exclude_scopes=["offline_access"])
    result = msal_sign_in(app, session)
    assert "access_token" in result and "refresh_token" not in result
    assert "offline_access" not in od.token_requests[-1].get("scope", "")


@_QUERY_MODE
def test_msal_confidential_client_on_a_work_tenant(
    work: OneDriveEmulator, session: requests.Session, raw: httpx.Client
) -> None:
    for tenant in ("organizations", work.tenant_id, "contoso.onmicrosoft.com"):
        app = msal.ConfidentialClientApplication(
            CLIENT_ID,
            client_credential=SECRET,
            authority=work.authority(tenant),
            instance_discovery=False,
            http_client=session,
        )
        result = msal_sign_in(app, session)
        assert result["id_token_claims"]["tid"] == work.tenant_id, tenant
        assert result["refresh_token"]

    wrong = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential="not-it",
        authority=work.authority("organizations"),
        instance_discovery=False,
        http_client=session,
    )
    refused = msal_sign_in(wrong, session)
    assert refused["error"] == "invalid_client" and refused["error_codes"] == [7000215]

    stranger = "1c9b0b4e-0000-4000-8000-000000000000"
    unknown = raw.get(f"{work.authority(stranger)}/v2.0/.well-known/openid-configuration")
    assert unknown.status_code == 400 and aad_error(unknown, 90002)


def test_consent_page_when_not_auto_approved(
    tls: tuple[Path, Path, Path], raw: httpx.Client
) -> None:
    with _emulator(tls, auto_approve=False) as od:
        page = raw.get(
            od.authorize_url("consumers"),
            params={
                "client_id": CLIENT_ID,
                "response_type": "code",
                "redirect_uri": REDIRECT,
                "scope": "Files.Read offline_access",
                "state": "s",
                "code_challenge": _CHALLENGE,
                "code_challenge_method": "S256",
            },
        )
        assert page.status_code == 200 and "Files.Read offline_access" in page.text
        request_id = page.text.split('name="request" value="')[1].split('"')[0]
        action = od.authorize_url("consumers")
        allowed = raw.post(action, data={"request": request_id, "decision": "allow"})
        code = parse_qs(urlsplit(allowed.headers["location"]).query)["code"][0]
        assert exchange(od, raw, code, _VERIFIER, tenant="consumers").status_code == 200
        replayed = raw.post(action, data={"request": request_id, "decision": "allow"})
        assert replayed.status_code == 400  # one answer per sign-in request
        raw.close()  # keep-alive connections would hold the server's shutdown


def test_identity_platform_errors(od: OneDriveEmulator, raw: httpx.Client) -> None:
    query = authorize(od, raw)
    assert exchange(od, raw, query["code"][0], _VERIFIER).status_code == 200
    replay = exchange(od, raw, query["code"][0], _VERIFIER)
    assert replay.status_code == 400 and aad_error(replay, 54005)["error"] == "invalid_grant"

    wrong = exchange(od, raw, authorize(od, raw)["code"][0], secrets.token_urlsafe(48))
    assert aad_error(wrong, 50148)["error"] == "invalid_grant"

    od.code_ttl = 0
    stale = exchange(od, raw, authorize(od, raw)["code"][0], _VERIFIER)
    assert aad_error(stale, 70008)["error"] == "invalid_grant"
    od.code_ttl = 600

    no_pkce = raw.get(
        od.authorize_url(),
        params={
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "scope": "Files.Read",
        },
    )
    assert parse_qs(urlsplit(no_pkce.headers["location"]).query)["error"] == ["invalid_request"]

    work_only = raw.get(
        od.authorize_url("organizations"),
        params={
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT,
            "scope": "Files.Read",
            "code_challenge": _CHALLENGE,
            "code_challenge_method": "S256",
        },
    )
    described = parse_qs(urlsplit(work_only.headers["location"]).query)["error_description"]
    assert described[0].startswith("AADSTS50020")

    bad_redirect = raw.get(
        od.authorize_url(),
        params={
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": "https://evil.example/cb",
            "scope": "Files.Read",
        },
    )
    assert bad_redirect.status_code == 400 and "AADSTS50011" in bad_redirect.text

    tokens = sign_in(od, raw)
    od.expire_refresh_tokens()
    assert aad_error(refresh(od, raw, tokens["refresh_token"]), 700082)
    assert aad_error(refresh(od, raw, "M.C" + "x" * 40), 9002313)
    missing = raw.post(od.token_url(), data={"client_id": CLIENT_ID})
    assert aad_error(missing, 900144)["error"] == "invalid_request"


# ---------------------------------------------------------------- Graph: tree and paging


def test_children_pages_with_top_select_and_next_links(
    od: OneDriveEmulator, graph: requests.Session
) -> None:
    cams = od.add_folder("Cams")
    names = [f"clip-{i}.mp4" for i in range(5)]
    for name in reversed(names):
        od.add_file(name, cams, name.encode())
    od.add_folder("Day 2", cams)

    items, pages = all_pages(graph, f"{od.graph_url}/me/drive/items/{cams}/children?$top=2")
    assert [len(p["value"]) for p in pages] == [2, 2, 2]
    assert [i["name"] for i in items] == [*names, "Day 2"]
    assert all(p["@odata.nextLink"].startswith(od.graph_url) for p in pages[:-1])
    clip = items[0]
    assert clip["parentReference"]["id"] == cams
    assert clip["parentReference"]["path"] == "/drive/root:/Cams"
    assert clip["file"]["mimeType"] == "video/mp4"
    assert clip["size"] == len(b"clip-0.mp4")
    assert clip["cTag"] and clip["eTag"] and clip["lastModifiedDateTime"].endswith("Z")
    assert items[-1]["folder"] == {"childCount": 0} and "cTag" not in items[-1]

    root = graph.get(f"{od.graph_url}/me/drive/root/children").json()["value"]
    assert [i["name"] for i in root] == ["Cams"] and root[0]["folder"]["childCount"] == 6

    picked, _ = all_pages(
        graph,
        f"{od.graph_url}/me/drive/items/{cams}/children?$top=4&$select=id,name",
    )
    assert len(picked) == 6 and all(set(i) == {"id", "name"} for i in picked)

    drive = graph.get(f"{od.graph_url}/me/drive").json()
    assert drive["driveType"] == "personal" and drive["id"] == od.drive_id
    same, _ = all_pages(graph, f"{od.graph_url}/drives/{od.drive_id}/items/{cams}/children")
    assert [i["id"] for i in same] == [i["id"] for i in items]
    item = graph.get(f"{od.graph_url}/drives/{od.drive_id}/items/{clip['id']}").json()
    assert item["name"] == "clip-0.mp4"
    assert graph.get(f"{od.graph_url}/me/drive/root").json()["root"] == {}


def test_sites_and_document_libraries_need_sites_read_all(
    business: OneDriveEmulator, raw: httpx.Client, session: requests.Session
) -> None:
    site = business.add_site("Warehouse West")
    library = business.add_library(site, "Camera Exports")
    business.add_file("dock.mp4", business.drive_root(library), b"dock")

    files_only = sign_in(business, raw, tenant="organizations")["access_token"]
    session.headers["Authorization"] = f"Bearer {files_only}"
    graph_error(session.get(f"{business.graph_url}/sites/{site}/drives"), 403, "accessDenied")
    assert session.get(f"{business.graph_url}/me/drive").json()["driveType"] == "business"

    scope = "Files.Read User.Read Sites.Read.All offline_access"
    session.headers["Authorization"] = (
        "Bearer " + sign_in(business, raw, tenant="organizations", scope=scope)["access_token"]
    )
    drives = session.get(f"{business.graph_url}/sites/{site}/drives").json()["value"]
    assert [(d["id"], d["driveType"], d["name"]) for d in drives] == [
        (library, "documentLibrary", "Camera Exports")
    ]
    found = session.get(f"{business.graph_url}/sites", params={"search": "warehouse"}).json()
    assert [s["id"] for s in found["value"]] == [site]
    listed = session.get(f"{business.graph_url}/drives/{library}/root/children").json()
    assert [i["name"] for i in listed["value"]] == ["dock.mp4"]
    assert "cTag" in listed["value"][0]  # business files have cTag outside delta


# ---------------------------------------------------------------- delta


def test_delta_pages_to_a_delta_link_then_only_changes(
    od: OneDriveEmulator, graph: requests.Session
) -> None:
    cams = od.add_folder("Cams")
    day = od.add_folder("Day 1", cams)
    kept = od.add_file("a.mp4", day, b"aaaa")
    moved = od.add_file("b.mp4", day, b"bbbb")
    doomed = od.add_file("c.mp4", day, b"cccc")
    changed = od.add_file("d.mp4", day, b"dddd")
    other = od.add_folder("Other")

    items, pages = all_pages(graph, f"{od.graph_url}/me/drive/root/delta?$top=3")
    assert len(pages) == 3 and "@odata.deltaLink" in pages[-1]
    assert all("@odata.deltaLink" not in p for p in pages[:-1])
    assert [i["name"] for i in items[:3]] == ["root", "Cams", "Day 1"]  # parents first
    assert {i["id"] for i in items} == {od.root_id, cams, day, kept, moved, doomed, changed, other}
    assert all("path" not in i["parentReference"] for i in items)  # delta: track by id
    first_ctag = {i["id"]: i.get("cTag") for i in items}
    delta_link = pages[-1]["@odata.deltaLink"]

    quiet = graph.get(delta_link).json()
    assert quiet["value"] == [] and "@odata.deltaLink" in quiet  # one request, nothing new

    od.rename(cams, "Cameras")
    od.move(moved, other)
    od.delete(doomed)
    od.update_file(changed, b"DDDDDD")
    od.rename(kept, "a-renamed.mp4")
    od.rename(kept, "a-final.mp4")
    later, later_pages = all_pages(graph, quiet["@odata.deltaLink"])
    by_id = {i["id"]: i for i in later}
    assert by_id[cams]["name"] == "Cameras"
    assert day in by_id  # the parent of changed items comes along
    assert by_id[moved]["parentReference"]["id"] == other
    assert by_id[doomed]["deleted"] == {} and by_id[doomed]["name"] == "c.mp4"
    assert "size" not in by_id[doomed] and "cTag" not in by_id[doomed]  # personal deletions
    assert by_id[changed]["cTag"] != first_ctag[changed]
    assert by_id[changed]["size"] == 6
    assert by_id[kept]["name"] == "a-final.mp4"  # renamed twice: once, newest name
    assert by_id[kept]["cTag"] == first_ctag[kept]  # metadata only: same content tag
    assert [i["id"] for i in later].count(kept) == 1

    od.delete(day)  # a folder with files still in it: each comes back deleted
    emptied, _ = all_pages(graph, later_pages[-1]["@odata.deltaLink"])
    assert {i["id"] for i in emptied if "deleted" in i} == {day, kept, changed}

    no_parents = graph.get(
        quiet["@odata.deltaLink"], headers={"deltaExcludeParent": "true"}
    ).json()["value"]
    assert od.root_id not in {i["id"] for i in no_parents}


def test_token_latest_then_changes_and_expired_tokens_answer_410(
    od: OneDriveEmulator, graph: requests.Session, raw: httpx.Client
) -> None:
    od.add_many("root", 5, size=3)
    latest = graph.get(f"{od.graph_url}/me/drive/root/delta", params={"token": "latest"}).json()
    assert latest["value"] == [] and latest["@odata.deltaLink"]
    new = od.add_file("new.mp4", "root", b"new")
    since = graph.get(latest["@odata.deltaLink"]).json()
    assert [i["id"] for i in since["value"] if "file" in i] == [new]

    od.expire_delta_tokens()
    gone = raw.get(since["@odata.deltaLink"], headers=dict(graph.headers))
    error = graph_error(gone, 410, "resyncRequired")
    assert error["innerError"]["code"] == "resyncChangesApplyDifferences"
    fresh, _ = all_pages(graph, gone.headers["location"])
    assert len([i for i in fresh if "file" in i]) == 6

    od.delta_token_ttl = 0.0  # tokens past their lifetime, by the knob
    link = graph.get(f"{od.graph_url}/me/drive/root/delta?token=latest").json()
    assert graph.get(link["@odata.deltaLink"]).status_code == 410


def test_folder_delta_is_personal_only_and_business_delta_drops_ctag(
    od: OneDriveEmulator,
    business: OneDriveEmulator,
    graph: requests.Session,
    raw: httpx.Client,
    tls: tuple[Path, Path, Path],
) -> None:
    cams = od.add_folder("Cams")
    inside = od.add_file("in.mp4", cams, b"1")
    od.add_file("out.mp4", "root", b"2")
    scoped, _ = all_pages(graph, f"{od.graph_url}/me/drive/items/{cams}/delta")
    assert {i["id"] for i in scoped} == {cams, inside}

    work_folder = business.add_folder("Cams")
    gone = business.add_file("x.mp4", work_folder, b"x")
    token = sign_in(business, raw, tenant="organizations")["access_token"]
    work = httpx.Client(
        verify=ssl.create_default_context(cafile=str(tls[0])),
        headers={"Authorization": f"Bearer {token}"},
    )
    with work:
        refused = work.get(f"{business.graph_url}/me/drive/items/{work_folder}/delta")
        graph_error(refused, 400, "invalidRequest")
        first = work.get(f"{business.graph_url}/me/drive/root/delta").json()
        files = [i for i in first["value"] if "file" in i]
        assert files and all("cTag" not in i for i in files)  # business delta omits cTag
        assert all("createdBy" not in i for i in first["value"])
        business.delete(gone)
        deleted = work.get(first["@odata.deltaLink"]).json()["value"]
        tomb = next(i for i in deleted if i["id"] == gone)
        assert tomb["deleted"] == {} and "name" not in tomb  # business deletions: no name


# ---------------------------------------------------------------- content and hashes


def test_content_redirects_to_a_preauthenticated_url_that_takes_ranges(
    od: OneDriveEmulator, graph: requests.Session, raw: httpx.Client
) -> None:
    data = os.urandom(300_000)
    clip = od.add_file("clip.mp4", "root", data)
    found = graph.get(f"{od.graph_url}/me/drive/items/{clip}/content", allow_redirects=False)
    assert found.status_code == 302
    location = found.headers["location"]

    whole = raw.get(location)  # no Authorization header at all
    assert whole.status_code == 200 and whole.content == data
    part = raw.get(location, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = raw.get(location, headers={"Range": "bytes=299000-"})
    assert tail.status_code == 206 and tail.content == data[299000:]
    assert raw.get(location, headers={"Range": "bytes=400000-"}).status_code == 416

    followed = graph.get(f"{od.graph_url}/me/drive/items/{clip}/content")  # as requests does
    assert followed.status_code == 200 and followed.content == data

    meta = graph.get(
        f"{od.graph_url}/me/drive/items/{clip}",
        params={"$select": "id,@microsoft.graph.downloadUrl"},
    ).json()
    assert set(meta) == {"id", "@microsoft.graph.downloadUrl"}
    etag = graph.get(f"{od.graph_url}/me/drive/items/{clip}").json()["eTag"]
    unchanged = graph.get(
        f"{od.graph_url}/me/drive/items/{clip}/content", headers={"if-none-match": etag}
    )
    assert unchanged.status_code == 304

    od.expire_download_urls()
    assert raw.get(location).status_code == 401
    od.download_url_ttl = 0
    stale = graph.get(f"{od.graph_url}/me/drive/items/{clip}").json()
    assert raw.get(stale["@microsoft.graph.downloadUrl"]).status_code == 401
    od.download_url_ttl = 3600
    od.update_file(clip, b"new bytes")
    changed = raw.get(meta["@microsoft.graph.downloadUrl"])
    assert changed.status_code == 401  # its content is gone: ask for a fresh URL


def pypi_quickxor(data: bytes) -> str:
    hasher = quickxorhash.quickxorhash()
    hasher.update(data)
    return base64.b64encode(hasher.digest()).decode()


@pytest.mark.parametrize(
    "size", [0, 1, 11, 159, 160, 161, 1000, 20 * 1024 + 3, 3 * 1024 * 1024 + 1]
)
def test_quickxorhash_is_the_pypi_packages(size: int) -> None:
    data = os.urandom(size)
    assert our_quickxorhash(data) == pypi_quickxor(data)
    pieces = QuickXorHash()
    for start in range(0, size, 997):
        pieces.update(data[start : start + 997])
    assert pieces.b64digest() == pypi_quickxor(data)


def test_file_hashes_and_fault_knobs(
    od: OneDriveEmulator, graph: requests.Session, raw: httpx.Client
) -> None:
    data = os.urandom(1_000_003)
    clip = od.add_file("clip.mp4", "root", data)
    item = graph.get(f"{od.graph_url}/me/drive/items/{clip}").json()
    assert item["file"]["hashes"] == {"quickXorHash": pypi_quickxor(data)}
    url = item["@microsoft.graph.downloadUrl"]
    assert pypi_quickxor(raw.get(url).content) == item["file"]["hashes"]["quickXorHash"]

    od.corrupt_next_download()
    flipped = raw.get(url).content
    assert len(flipped) == len(data) and flipped != data
    assert pypi_quickxor(flipped) != item["file"]["hashes"]["quickXorHash"]

    od.report_wrong_hash(clip)
    lying = graph.get(f"{od.graph_url}/me/drive/items/{clip}").json()
    assert lying["file"]["hashes"]["quickXorHash"] != pypi_quickxor(data)
    od.report_wrong_hash(clip, on=False)

    od.cut_next_download(100_000)
    with pytest.raises(httpx.RemoteProtocolError):
        raw.get(url)
    resumed = raw.get(url, headers={"Range": "bytes=100000-"})
    assert resumed.status_code == 206 and resumed.content == data[100_000:]

    od.cut_next_download(50_000, expire_url=True)  # the URL expires mid-file
    with pytest.raises(httpx.RemoteProtocolError):
        raw.get(url)
    assert raw.get(url, headers={"Range": "bytes=50000-"}).status_code == 401
    fresh = graph.get(f"{od.graph_url}/me/drive/items/{clip}").json()
    again = raw.get(fresh["@microsoft.graph.downloadUrl"], headers={"Range": "bytes=50000-"})
    assert again.status_code == 206 and again.content == data[50_000:]


# ---------------------------------------------------------------- errors and throttling


def test_graph_error_bodies(od: OneDriveEmulator, raw: httpx.Client) -> None:
    tokens = sign_in(od, raw)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    empty = raw.get(f"{od.graph_url}/me/drive/root/children")
    assert graph_error(empty, 401, "InvalidAuthenticationToken")["message"] == (
        "Access token is empty."
    )
    assert empty.headers["www-authenticate"].startswith("Bearer realm=")

    missing = raw.get(
        f"{od.graph_url}/me/drive/items/NOPE!1",
        headers={**bearer, "client-request-id": "my-request"},
    )
    error = graph_error(missing, 404, "itemNotFound")
    assert error["innerError"]["client-request-id"] == "my-request"
    assert missing.headers["client-request-id"] == "my-request"

    bad_select = raw.get(f"{od.graph_url}/me/drive/root/children?$select=nope", headers=bearer)
    graph_error(bad_select, 400, "invalidRequest")
    bad_top = raw.get(f"{od.graph_url}/me/drive/root/children?$top=zero", headers=bearer)
    graph_error(bad_top, 400, "invalidRequest")
    graph_error(raw.get(f"{od.graph_url}/me/drive/nothing", headers=bearer), 400, "BadRequest")

    no_user_read = sign_in(od, raw, scope="Files.Read offline_access")["access_token"]
    graph_error(
        raw.get(f"{od.graph_url}/me", headers={"Authorization": f"Bearer {no_user_read}"}),
        403,
        "accessDenied",
    )

    od.expire_access_tokens()
    expired = raw.get(f"{od.graph_url}/me/drive", headers=bearer)
    assert "expired" in graph_error(expired, 401, "InvalidAuthenticationToken")["message"]
    renewed = refresh(od, raw, tokens["refresh_token"]).json()
    ok = raw.get(
        f"{od.graph_url}/me/drive", headers={"Authorization": "Bearer " + renewed["access_token"]}
    )
    assert ok.status_code == 200


def test_throttling_answers_429_and_503_with_retry_after(
    od: OneDriveEmulator, graph: requests.Session
) -> None:
    od.throttle_next(2, retry_after=41)
    od.throttle_next(1, status=503, retry_after=None)
    url = f"{od.graph_url}/me/drive/root/children"
    for _ in range(2):
        throttled = graph.get(url)
        error = graph_error(throttled, 429, "activityLimitReached")
        assert error["innerError"]["code"] == "throttledRequest"
        assert throttled.headers["retry-after"] == "41"
    busy = graph.get(url)
    graph_error(busy, 503, "serviceNotAvailable")
    assert "retry-after" not in busy.headers
    assert graph.get(url).status_code == 200

    assert od.count("/v1.0/me/drive/root/children") == 4
    assert [r.status for r in od.requests[-4:]] == [429, 429, 503, 200]
    assert all("authorization" not in r.headers for r in od.requests)

    od.fail_token_calls(1)
    assert graph.post(od.token_url(), data={"client_id": CLIENT_ID}).status_code == 503
