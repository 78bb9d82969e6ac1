"""The Dropbox emulator answers Dropbox's own Python SDK (and raw HTTP) as Dropbox does.

The SDK (`dropbox`, github.com/dropbox/dropbox-sdk-python) is a second client, not ours:
it is pointed at the emulator only through the environment variables it reads and a
requests session that trusts the emulator's CA. Raw httpx checks the bodies the SDK
hides (plain-text 400s, error_summary, headers).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests

from tests.media import make_video
from tests.providers.dropbox.emulator import (
    BLOCK,
    HOSTS,
    SDK_ENVIRONMENT,
    DropboxEmulator,
    content_hash,
)

APP_KEY = "vpack-dropbox-test"
APP_SECRET = "dropbox-s3cret"
REDIRECT = "http://127.0.0.1:8000/api/cloud/dropbox/oauth/callback"


@pytest.fixture(scope="module")
def sdk() -> ModuleType:
    """The SDK, imported once its host variables name the emulator's stand-in hosts.

    Another test module may have imported it already (tests/unit/test_hashes.py uses
    its content hasher), with Dropbox's real hosts read in: import it afresh."""
    os.environ.update(SDK_ENVIRONMENT)
    for name in [m for m in sys.modules if m == "dropbox" or m.startswith("dropbox.")]:
        del sys.modules[name]
    import dropbox

    expected = HOSTS["api"]
    if expected != dropbox.session.API_HOST:
        pytest.fail("dropbox was imported before its host variables were set")
    return dropbox


@pytest.fixture
def server() -> Iterator[DropboxEmulator]:
    with DropboxEmulator(app_key=APP_KEY, app_secret=APP_SECRET, redirect_uris=[REDIRECT]) as dbx:
        dbx.longpoll_wait = 2.0
        yield dbx


def sign_in(
    sdk: ModuleType,
    server: DropboxEmulator,
    *,
    pkce: bool = True,
    access_type: str = "offline",
) -> Any:
    """The SDK's redirect flow, with the test playing the browser."""
    session: dict[str, str] = {}
    flow = sdk.DropboxOAuth2Flow(
        APP_KEY,
        REDIRECT,
        session,
        "csrf",
        consumer_secret=None if pkce else APP_SECRET,
        use_pkce=pkce,
        token_access_type=access_type,
    )
    flow.requests_session = server.requests_session()
    url = flow.start()
    assert urlsplit(url).hostname == HOSTS["www"]
    answer = server.requests_session().get(url, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT)
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return flow.finish(query)


def client(sdk: ModuleType, server: DropboxEmulator, **options: Any) -> Any:
    """An SDK client holding only a refresh token (PKCE: no secret), as a service would."""
    result = sign_in(sdk, server)
    return sdk.Dropbox(
        oauth2_refresh_token=result.refresh_token,
        app_key=APP_KEY,
        session=server.requests_session(),
        **options,
    )


@pytest.fixture
def dbx(sdk: ModuleType, server: DropboxEmulator) -> Any:
    return client(sdk, server)


@pytest.fixture
def raw(server: DropboxEmulator) -> Iterator[tuple[httpx.Client, str]]:
    """httpx on the emulator's own address, and a live access token."""
    with httpx.Client(base_url=server.base_url, verify=server.ssl_context()) as http:
        yield http, token_for(server, http)


def token_for(server: DropboxEmulator, http: httpx.Client) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = hashlib.sha256(verifier.encode()).digest()
    params = {
        "client_id": APP_KEY,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "token_access_type": "offline",
        "code_challenge": base64.urlsafe_b64encode(challenge).rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    answer = http.get("/oauth2/authorize", params=params)
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    tokens = http.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": APP_KEY,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    ).json()
    token: str = tokens["access_token"]
    return token


def rpc(http: httpx.Client, token: str | None, route: str, arg: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers["Content-Type"] = "application/json"
    return http.post(f"/2/{route}", content=json.dumps(arg), headers=headers)


def summary_of(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    summary: str = body["error_summary"]
    assert body["error"]
    return summary


def own_content_hash(data: bytes) -> str:
    """Dropbox's content-hash page, step by step, independent of emulator and SDK."""
    digests = [hashlib.sha256(data[i : i + BLOCK]).digest() for i in range(0, len(data), BLOCK)]
    return hashlib.sha256(b"".join(digests)).hexdigest()


# ---------------------------------------------------------------- OAuth


def test_pkce_sign_in_needs_no_secret_and_offline_gives_a_refresh_token(
    sdk: ModuleType, server: DropboxEmulator
) -> None:
    result = sign_in(sdk, server)
    assert result.access_token.startswith("sl.")
    assert result.refresh_token and result.account_id == server.account_id
    assert result.user_id == server.uid and result.expires_at is not None
    server.reset_counts()
    dbx = sdk.Dropbox(
        oauth2_refresh_token=result.refresh_token,
        app_key=APP_KEY,
        session=server.requests_session(),
    )
    account = dbx.users_get_current_account()  # the SDK refreshes first: it holds no token
    assert account.email == server.email and account.email_verified
    assert account.account_id == server.account_id
    assert server.count("/oauth2/token") == 1
    assert isinstance(account.root_info, sdk.common.UserRootInfo)


def test_online_or_secret_flows_follow_dropboxs_rules(
    sdk: ModuleType, server: DropboxEmulator, raw: tuple[httpx.Client, str]
) -> None:
    online = sign_in(sdk, server, pkce=False, access_type="online")  # app secret
    assert online.refresh_token == "" and online.access_token.startswith("sl.")
    http, _ = raw
    answer = http.get(
        "/oauth2/authorize",
        params={"client_id": APP_KEY, "response_type": "code", "redirect_uri": REDIRECT},
    )
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "client_id": APP_KEY}
    refused = http.post("/oauth2/token", data={**form, "redirect_uri": REDIRECT})
    assert refused.status_code == 400  # neither a secret nor PKCE
    assert refused.json() == {
        "error": "invalid_request",
        "error_description": "No auth function available for given request",
    }
    wrong = http.post("/oauth2/token", data={**form, "client_secret": "nope"})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_client"
    good = http.post(
        "/oauth2/token", data={**form, "client_secret": APP_SECRET, "redirect_uri": REDIRECT}
    )
    assert good.status_code == 200, good.text
    tokens = good.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 14400
    assert "refresh_token" not in tokens  # no token_access_type=offline
    again = http.post(
        "/oauth2/token", data={**form, "client_secret": APP_SECRET, "redirect_uri": REDIRECT}
    )
    assert again.json()["error"] == "invalid_grant"  # codes are single use


def test_refresh_answers_and_errors(
    sdk: ModuleType, server: DropboxEmulator, raw: tuple[httpx.Client, str]
) -> None:
    http, _ = raw
    result = sign_in(sdk, server)
    form = {"grant_type": "refresh_token", "refresh_token": result.refresh_token}
    refreshed = http.post("/oauth2/token", data={**form, "client_id": APP_KEY})
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 14400
    assert "refresh_token" not in body and body["access_token"].startswith("sl.")
    assert rpc(http, body["access_token"], "users/get_current_account", None).status_code == 200
    server.revoke_refresh_tokens()
    dead = http.post("/oauth2/token", data={**form, "client_id": APP_KEY})
    assert dead.status_code == 400
    assert dead.json() == {
        "error": "invalid_grant",
        "error_description": "refresh token is invalid or revoked",
    }
    dbx = sdk.Dropbox(
        oauth2_refresh_token=result.refresh_token,
        app_key=APP_KEY,
        session=server.requests_session(),
    )
    with pytest.raises(sdk.exceptions.AuthError) as refused:
        dbx.users_get_current_account()
    assert refused.value.error.is_invalid_access_token()  # how the SDK words invalid_grant


def test_an_expired_token_is_refreshed_once_by_the_sdk(
    sdk: ModuleType, server: DropboxEmulator, dbx: Any, raw: tuple[httpx.Client, str]
) -> None:
    server.add_file("/a.mp4", b"video")
    dbx.users_get_current_account()
    http, token = raw
    server.expire_access_tokens()
    server.reset_counts()
    assert [e.name for e in dbx.files_list_folder("").entries] == ["a.mp4"]
    assert server.count("/oauth2/token") == 1  # 401 expired_access_token, refresh, retry
    assert server.count("/2/files/list_folder") == 2
    expired = rpc(http, token, "files/list_folder", {"path": ""})
    assert summary_of(expired, 401).startswith("expired_access_token/")
    assert expired.json()["error"] == {".tag": "expired_access_token"}


def test_unknown_malformed_missing_and_revoked_tokens(
    sdk: ModuleType, server: DropboxEmulator, dbx: Any, raw: tuple[httpx.Client, str]
) -> None:
    http, token = raw
    unknown = rpc(http, "sl.nobody-issued-this", "files/list_folder", {"path": ""})
    assert summary_of(unknown, 401).startswith("invalid_access_token/")
    malformed = http.post(
        "/2/files/list_folder", json={"path": ""}, headers={"Authorization": "Bearer a b"}
    )
    assert malformed.status_code == 400
    assert malformed.headers["content-type"].startswith("text/plain")
    assert malformed.text == (
        'Error in call to API function "files/list_folder":'
        " The given OAuth 2 access token is malformed."
    )
    missing = rpc(http, None, "files/list_folder", {"path": ""})
    assert missing.status_code == 400 and "Authorization" in missing.text
    dbx.users_get_current_account()
    server.revoke_access()  # the user unlinked the app
    assert summary_of(rpc(http, token, "files/list_folder", {"path": ""}), 401).startswith(
        "invalid_access_token/"
    )
    with pytest.raises(sdk.exceptions.AuthError) as refused:
        dbx.files_list_folder("")
    assert refused.value.error.is_invalid_access_token()


def test_token_revoke_kills_the_token_and_its_refresh_token(
    sdk: ModuleType, server: DropboxEmulator
) -> None:
    result = sign_in(sdk, server)
    dbx = sdk.Dropbox(
        oauth2_access_token=result.access_token,
        oauth2_refresh_token=result.refresh_token,
        oauth2_access_token_expiration=result.expires_at,
        app_key=APP_KEY,
        session=server.requests_session(),
    )
    dbx.auth_token_revoke()
    with pytest.raises(sdk.exceptions.AuthError):
        dbx.users_get_current_account()


# ---------------------------------------------------------------- listing and changes


def test_list_folder_pages_with_continue_then_reports_changes(
    sdk: ModuleType, server: DropboxEmulator, dbx: Any
) -> None:
    files = sdk.files
    for i in range(25):
        server.add_file(f"/Cam/2024/clip-{i:02d}.mp4", f"clip {i}".encode())
    server.add_file("/readme.txt", b"hi")
    top = dbx.files_list_folder("")
    assert sorted((type(e).__name__, e.path_display) for e in top.entries) == [
        ("FileMetadata", "/readme.txt"),
        ("FolderMetadata", "/Cam"),
    ]
    page = dbx.files_list_folder("/cam", recursive=True, limit=10)  # paths are case-blind
    entries, pages = list(page.entries), 1
    while page.has_more:
        page = dbx.files_list_folder_continue(page.cursor)
        entries += page.entries
        pages += 1
    assert pages == 3 and len(entries) == 27  # /Cam itself, /Cam/2024, 25 clips
    assert entries[0].path_lower == "/cam" and entries[1].path_lower == "/cam/2024"
    clips = [e for e in entries if isinstance(e, files.FileMetadata)]
    assert {c.size for c in clips} <= {6, 7} and all(len(c.rev) >= 9 for c in clips)
    assert all(c.id.startswith("id:") and c.content_hash for c in clips)
    assert all(c.path_lower == c.path_display.lower() for c in clips)

    cursor = page.cursor
    assert dbx.files_list_folder_continue(cursor).entries == []
    server.add_file("/Cam/2024/new.mp4", b"new")
    server.add_file("/Cam/2024/clip-00.mp4", b"changed")  # a new revision
    server.delete("/Cam/2024/clip-01.mp4")
    server.move("/Cam/2024/clip-02.mp4", "/Cam/2024/renamed.mp4")
    server.add_file("/elsewhere.mp4", b"out of scope")
    changes = dbx.files_list_folder_continue(cursor)
    seen = [(type(e).__name__, e.name) for e in changes.entries]
    assert seen == [
        ("FileMetadata", "new.mp4"),
        ("FileMetadata", "clip-00.mp4"),
        ("DeletedMetadata", "clip-01.mp4"),
        ("DeletedMetadata", "clip-02.mp4"),
        ("FileMetadata", "renamed.mp4"),
    ]
    assert changes.entries[1].rev != clips[0].rev and not changes.has_more
    deleted_too = dbx.files_list_folder("/Cam/2024", include_deleted=True)
    assert {e.name for e in deleted_too.entries} >= {"clip-01.mp4", "clip-02.mp4"}
    assert "clip-01.mp4" not in {e.name for e in dbx.files_list_folder("/Cam/2024").entries}


def test_latest_cursor_and_longpoll_see_only_new_changes(
    sdk: ModuleType, server: DropboxEmulator, dbx: Any
) -> None:
    server.add_file("/Cam/old.mp4", b"old")
    cursor = dbx.files_list_folder_get_latest_cursor("/Cam", recursive=True).cursor
    assert dbx.files_list_folder_continue(cursor).entries == []
    server.longpoll_wait = 0.3
    assert dbx.files_list_folder_longpoll(cursor, timeout=30).changes is False

    server.longpoll_wait = 10.0
    answers: list[Any] = []
    poll = threading.Thread(target=lambda: answers.append(dbx.files_list_folder_longpoll(cursor)))
    started = time.monotonic()
    poll.start()
    time.sleep(0.3)
    server.add_file("/Other/not-watched.mp4", b"x")  # outside the cursor's folder
    time.sleep(0.2)
    assert poll.is_alive()
    server.add_file("/Cam/new.mp4", b"new")
    poll.join(timeout=5)
    assert answers and answers[0].changes is True
    assert time.monotonic() - started < 3
    assert [e.name for e in dbx.files_list_folder_continue(cursor).entries] == ["new.mp4"]
    assert server.requests[-2].host == HOSTS["notify"]  # longpoll went to the notify host
    assert "authorization" not in server.requests[-2].headers  # and needs no token

    server.longpoll_backoff = 5
    assert dbx.files_list_folder_longpoll(cursor, timeout=30).backoff == 5


def test_longpoll_timeout_bounds_and_other_bad_input(
    server: DropboxEmulator, raw: tuple[httpx.Client, str]
) -> None:
    http, token = raw
    cursor = rpc(http, token, "files/list_folder", {"path": ""}).json()["cursor"]
    for timeout in (29, 481):
        answer = http.post(
            "/2/files/list_folder/longpoll", json={"cursor": cursor, "timeout": timeout}
        )
        assert answer.status_code == 400 and "timeout" in answer.text
    for arg, words in [
        ({"path": "/"}, "Specify the root folder as an empty string"),
        ({"path": "", "limit": 0}, "limit"),
        ({"path": "", "limit": 2001}, "limit"),
        ({"path": "", "recursive": "yes"}, "recursive"),
        ({}, "path"),
        ({"path": "no-slash"}, "did not match pattern"),
    ]:
        answer = rpc(http, token, "files/list_folder", arg)
        assert answer.status_code == 400, arg
        assert answer.headers["content-type"].startswith("text/plain")
        assert answer.text.startswith('Error in call to API function "files/list_folder": ')
        assert words in answer.text
    wrong_type = http.post(
        "/2/files/list_folder",
        content=b'{"path": ""}',
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )
    assert wrong_type.status_code == 400 and 'Bad HTTP "Content-Type" header' in wrong_type.text
    garbage = rpc(http, token, "files/list_folder/continue", {"cursor": "not-a-cursor"})
    assert garbage.status_code == 400 and "cursor" in garbage.text


def test_an_expired_cursor_is_a_409_reset(
    sdk: ModuleType, server: DropboxEmulator, dbx: Any, raw: tuple[httpx.Client, str]
) -> None:
    server.add_file("/Cam/a.mp4", b"a")
    cursor = dbx.files_list_folder("/Cam").cursor
    http, token = raw
    raw_cursor = rpc(http, token, "files/list_folder", {"path": "/Cam"}).json()["cursor"]
    server.reset_cursors()
    with pytest.raises(sdk.exceptions.ApiError) as reset:
        dbx.files_list_folder_continue(cursor)
    assert reset.value.error.is_reset()
    with pytest.raises(sdk.exceptions.ApiError) as reset_poll:
        dbx.files_list_folder_longpoll(cursor)
    assert reset_poll.value.error.is_reset()
    answer = rpc(http, token, "files/list_folder/continue", {"cursor": raw_cursor})
    assert summary_of(answer, 409).startswith("reset/")
    assert answer.json()["error"] == {".tag": "reset"}
    fresh = dbx.files_list_folder("/Cam")  # listing again works
    assert [e.name for e in fresh.entries] == ["a.mp4"]

    server.delete("/Cam")  # a cursor whose folder is gone: 409 path
    with pytest.raises(sdk.exceptions.ApiError) as gone:
        dbx.files_list_folder_continue(fresh.cursor)
    assert gone.value.error.is_path() and gone.value.error.get_path().is_not_found()


def test_lookup_errors_are_409_with_error_summary(
    sdk: ModuleType, server: DropboxEmulator, dbx: Any, raw: tuple[httpx.Client, str]
) -> None:
    server.add_file("/Cam/a.mp4", b"a")
    with pytest.raises(sdk.exceptions.ApiError) as missing:
        dbx.files_get_metadata("/Cam/nope.mp4")
    assert missing.value.error.is_path() and missing.value.error.get_path().is_not_found()
    with pytest.raises(sdk.exceptions.ApiError) as not_folder:
        dbx.files_list_folder("/Cam/a.mp4")
    assert not_folder.value.error.get_path().is_not_folder()
    with pytest.raises(sdk.exceptions.ApiError) as not_file:
        dbx.files_download("/Cam")
    assert not_file.value.error.get_path().is_not_file()
    http, token = raw
    answer = rpc(http, token, "files/get_metadata", {"path": "/Cam/nope.mp4"})
    assert summary_of(answer, 409).startswith("path/not_found/")
    assert answer.json()["error"] == {".tag": "path", "path": {".tag": "not_found"}}
    by_id = dbx.files_get_metadata(server.file_id("/Cam/a.mp4"))
    assert by_id.path_display == "/Cam/a.mp4"
    server.delete("/Cam/a.mp4")
    gone = dbx.files_get_metadata("/Cam/a.mp4", include_deleted=True)
    assert isinstance(gone, sdk.files.DeletedMetadata) and gone.name == "a.mp4"


# ---------------------------------------------------------------- download


def test_download_whole_and_by_range(
    sdk: ModuleType,
    server: DropboxEmulator,
    dbx: Any,
    raw: tuple[httpx.Client, str],
    tmp_path: Path,
) -> None:
    video = make_video(tmp_path / "clip.mp4").read_bytes()
    server.add_file("/Cam/café.mp4", video)  # a non-ASCII name: the header escapes it
    meta, response = dbx.files_download("/Cam/café.mp4")
    assert response.content == video and response.status_code == 200
    assert meta.name == "café.mp4" and meta.size == len(video)
    assert response.headers["dropbox-api-result"].isascii()
    assert server.requests[-1].host == HOSTS["content"]

    files = sdk.files
    part_meta, part = dbx.request(
        files.download,
        "files",
        files.DownloadArg(path=meta.id),
        None,
        extra_headers={"Range": "bytes=100-199"},
    )
    assert part.status_code == 206 and part.content == video[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(video)}"
    assert part_meta.content_hash == meta.content_hash

    http, token = raw  # GET with the argument and the token as URL parameters
    got = http.get(
        "/2/files/download",
        params={"arg": '{"path": "/Cam/caf\\u00e9.mp4"}', "authorization": f"Bearer {token}"},
        headers={"Range": "bytes=-10"},
    )
    assert got.status_code == 206 and got.content == video[-10:]
    beyond = http.post(
        "/2/files/download",
        headers={
            "Authorization": f"Bearer {token}",
            "Dropbox-API-Arg": '{"path": "/Cam/caf\\u00e9.mp4"}',
            "Range": f"bytes={len(video)}-",
        },
    )
    assert beyond.status_code == 416
    no_arg = http.post("/2/files/download", headers={"Authorization": f"Bearer {token}"})
    assert no_arg.status_code == 400 and "Dropbox-API-Arg" in no_arg.text

    old_rev = meta.rev
    server.add_file("/Cam/café.mp4", b"second revision")
    old_meta, old = dbx.files_download("/Cam/café.mp4", rev=old_rev)
    assert old.content == video and old_meta.rev == old_rev


def test_content_hash_is_dropboxs_block_hash(
    sdk: ModuleType, server: DropboxEmulator, dbx: Any
) -> None:
    from dropbox.content_hash import DropboxContentHasher

    # No block for an empty file: the hash of the empty string (the reference page, and
    # the content_hash in the HTTP reference's examples).
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert content_hash(b"") == own_content_hash(b"") == empty
    big = os.urandom(9_711_423)  # the size of the reference page's example: three blocks
    for size in (1, BLOCK - 1, BLOCK, BLOCK + 1, len(big)):
        data = big[:size]
        hasher = DropboxContentHasher()
        for i in range(0, size, 1_000_000):  # fed in pieces that straddle the blocks
            hasher.update(data[i : i + 1_000_000])
        assert content_hash(data) == own_content_hash(data) == hasher.hexdigest(), size
    server.add_file("/big.bin", big)
    meta = dbx.files_get_metadata("/big.bin")
    assert meta.content_hash == own_content_hash(big) and meta.size == len(big)


def test_cut_stream_resumes_by_range_and_a_corrupt_body_fails_the_hash(
    sdk: ModuleType, server: DropboxEmulator, dbx: Any
) -> None:
    data = os.urandom(600_000)
    server.add_file("/Cam/a.mp4", data)
    server.cut_next_download(100_000)
    meta, response = dbx.files_download("/Cam/a.mp4")
    assert response.headers["content-length"] == str(len(data))
    with pytest.raises(requests.exceptions.RequestException):
        response.content  # noqa: B018 - reading the body is the point
    files = sdk.files
    _, rest = dbx.request(
        files.download,
        "files",
        files.DownloadArg(path="/Cam/a.mp4"),
        None,
        extra_headers={"Range": "bytes=100000-"},
    )
    assert data[:100_000] + rest.content == data

    server.corrupt_next_download()
    meta, response = dbx.files_download("/Cam/a.mp4")
    bad = response.content
    assert len(bad) == len(data) and sum(a != b for a, b in zip(bad, data, strict=True)) == 1
    assert own_content_hash(bad) != meta.content_hash == own_content_hash(data)


# ---------------------------------------------------------------- limits, hosts, team spaces


def test_429_carries_retry_after_and_the_sdk_waits_it_out(
    sdk: ModuleType, server: DropboxEmulator, raw: tuple[httpx.Client, str]
) -> None:
    http, token = raw
    server.rate_limit_next(1, retry_after=1)
    limited = rpc(http, token, "files/list_folder", {"path": ""})
    assert summary_of(limited, 429).startswith("too_many_requests/")
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["error"] == {"reason": {".tag": "too_many_requests"}, "retry_after": 1}

    strict = client(sdk, server, max_retries_on_rate_limit=0)
    strict.users_get_current_account()
    server.rate_limit_next(1, retry_after=1, reason="too_many_write_operations")
    with pytest.raises(sdk.exceptions.RateLimitError) as error:
        strict.files_list_folder("")
    assert error.value.backoff == 1 and error.value.error.reason.is_too_many_write_operations()

    patient = client(sdk, server)
    patient.users_get_current_account()
    server.rate_limit_next(1, retry_after=1)
    started = time.monotonic()
    assert patient.files_list_folder("").entries == []
    assert time.monotonic() - started >= 1  # it waited Retry-After, then succeeded


def test_each_host_serves_only_its_own_paths(
    sdk: ModuleType, server: DropboxEmulator, dbx: Any
) -> None:
    dbx.users_get_current_account()
    session = server.requests_session()
    wrong = session.post(
        f"https://{HOSTS['content']}/2/files/list_folder",
        json={"path": ""},
        headers={"Authorization": "Bearer whatever"},
    )
    assert wrong.status_code == 400 and HOSTS["api"] in wrong.text
    with pytest.raises(requests.ConnectionError):
        session.get("https://api.dropboxapi.com/2/users/get_current_account")


def test_team_space_through_the_path_root_header(sdk: ModuleType) -> None:
    with DropboxEmulator(
        app_key=APP_KEY, app_secret=APP_SECRET, redirect_uris=[REDIRECT], team=True
    ) as server:
        server.add_file("/Cam/member.mp4", b"in the member folder")
        server.add_file("/Packing Team/station-1.mp4", b"in the team space", team_space=True)
        dbx = client(sdk, server)
        account = dbx.users_get_current_account()
        root = account.root_info
        assert isinstance(root, sdk.common.TeamRootInfo)
        assert root.home_path == "/Emulated Owner"
        assert root.root_namespace_id != root.home_namespace_id
        assert account.account_type.is_business() and account.team is not None

        home = dbx.files_list_folder("", recursive=True)
        assert sorted(e.path_display for e in home.entries) == ["/Cam", "/Cam/member.mp4"]
        common = sdk.common
        team = dbx.with_path_root(common.PathRoot.root(root.root_namespace_id))
        everything = team.files_list_folder("", recursive=True)
        assert sorted(e.path_display for e in everything.entries) == [
            "/Emulated Owner",
            "/Emulated Owner/Cam",
            "/Emulated Owner/Cam/member.mp4",
            "/Packing Team",
            "/Packing Team/station-1.mp4",
        ]
        _, body = team.files_download("/Packing Team/station-1.mp4")
        assert body.content == b"in the team space"
        home_ns = dbx.with_path_root(common.PathRoot.namespace_id(root.home_namespace_id))
        assert len(home_ns.files_list_folder("").entries) == 1

        stale = dbx.with_path_root(common.PathRoot.root("12345"))
        with pytest.raises(sdk.exceptions.PathRootError) as refused:
            stale.files_list_folder("")
        assert refused.value.error.is_invalid_root()
        assert refused.value.error.get_invalid_root().root_namespace_id == root.root_namespace_id
        foreign = dbx.with_path_root(common.PathRoot.namespace_id("999"))
        with pytest.raises(sdk.exceptions.PathRootError) as denied:
            foreign.files_list_folder("")
        assert denied.value.error.is_no_permission()
