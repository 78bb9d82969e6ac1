"""The Google Drive emulator speaks Drive v3 and Google OAuth over plain HTTP, faults included."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.providers.google_drive.emulator import DRIVE_READONLY, FOLDER, GOOGLE_DOC, DriveEmulator

CLIENT_ID = "vpack-drive-test"
CLIENT_SECRET = "drive-s3cret"
REDIRECT = "http://127.0.0.1:8000/api/cloud/google_drive/oauth/callback"
RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def drive() -> Iterator[DriveEmulator]:
    with DriveEmulator(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT]
    ) as server:
        yield server


def pkce_pair(method: str | None) -> tuple[str | None, dict[str, str]]:
    """A verifier and the authorization parameters carrying its challenge (RFC 7636 §4.2)."""
    if method is None:
        return None, {}
    verifier = secrets.token_urlsafe(48)
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    challenge = digest.rstrip(b"=").decode() if method == "S256" else verifier
    return verifier, {"code_challenge": challenge, "code_challenge_method": method}


def authorize(
    drive: DriveEmulator,
    pkce: dict[str, str],
    *,
    scope: str = DRIVE_READONLY,
    access_type: str | None = "offline",
    prompt: str | None = "consent",
) -> dict[str, list[str]]:
    """The browser's part: the authorization request and the redirect's query."""
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "st4te",
        **pkce,
    }
    if access_type:
        params["access_type"] = access_type
    if prompt:
        params["prompt"] = prompt
    answer = httpx.get(drive.authorize_url, params=params)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["st4te"]
    return query


def exchange(
    drive: DriveEmulator, query: dict[str, list[str]], verifier: str | None
) -> httpx.Response:
    """The backend's part: the code (and the PKCE verifier, if any) for tokens."""
    form = {
        "grant_type": "authorization_code",
        "code": query["code"][0],
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return httpx.post(drive.token_url, data=form)


def code_flow(
    drive: DriveEmulator,
    *,
    scope: str = DRIVE_READONLY,
    access_type: str | None = "offline",
    prompt: str | None = "consent",
    pkce: str | None = "S256",
) -> dict[str, Any]:
    """The authorization code flow (with PKCE by `pkce` method), as a browser and a backend
    would run it."""
    verifier, challenge = pkce_pair(pkce)
    query = authorize(drive, challenge, scope=scope, access_type=access_type, prompt=prompt)
    tokens = exchange(drive, query, verifier)
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    return body


def refresh(drive: DriveEmulator, refresh_token: str) -> httpx.Response:
    return httpx.post(
        drive.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )


@pytest.fixture
def api(drive: DriveEmulator) -> Iterator[httpx.Client]:
    token = code_flow(drive)["access_token"]
    with httpx.Client(
        base_url=f"{drive.api_url}/drive/v3", headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


def error_of(answer: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == answer.status_code
    assert error["message"] and error["errors"][0]["message"]
    return error


def list_all(api: httpx.Client, **params: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token = None
    while True:
        page = api.get("/files", params={**params, **({"pageToken": token} if token else {})})
        assert page.status_code == 200, page.text
        found.extend(page.json()["files"])
        token = page.json().get("nextPageToken")
        if token is None:
            return found


# ---------------------------------------------------------------- OAuth


def test_refresh_tokens_follow_googles_offline_and_consent_rules(drive: DriveEmulator) -> None:
    first = code_flow(drive)
    assert first["refresh_token"] and first["scope"] == DRIVE_READONLY
    renewed = refresh(drive, first["refresh_token"])
    assert renewed.status_code == 200
    assert "refresh_token" not in renewed.json()  # Google keeps the old one valid
    assert refresh(drive, first["refresh_token"]).status_code == 200

    assert "refresh_token" not in code_flow(drive, access_type=None)  # online access
    assert "refresh_token" not in code_flow(drive, prompt=None)  # already granted once
    assert code_flow(drive)["refresh_token"]  # prompt=consent asks again

    drive.revoke_refresh_tokens()
    revoked = refresh(drive, first["refresh_token"])
    assert revoked.status_code == 400 and revoked.json()["error"] == "invalid_grant"


def test_pkce_is_optional_and_plain_is_allowed_as_google_documents(
    drive: DriveEmulator,
) -> None:
    # native-app guide: code_challenge and code_challenge_method are "Recommended", the
    # method is S256 or plain, and plain when a challenge comes without one.
    assert code_flow(drive, pkce=None)["refresh_token"]  # offline + consent, no PKCE
    assert code_flow(drive, pkce="plain")["access_token"]
    verifier = secrets.token_urlsafe(48)
    no_method = authorize(drive, {"code_challenge": verifier})
    assert exchange(drive, no_method, verifier).status_code == 200

    other = authorize(drive, {"code_challenge": "A" * 43, "code_challenge_method": "S512"})
    assert other["error"] == ["invalid_request"] and "code" not in other


def test_a_wrong_or_needless_verifier_is_invalid_grant(drive: DriveEmulator) -> None:
    for method in ("S256", "plain"):
        _, challenge = pkce_pair(method)
        wrong = exchange(drive, authorize(drive, challenge), secrets.token_urlsafe(48))
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant", method
    # A verifier for a code asked without a challenge (RFC 9700 §4.8.2; Google answers
    # invalid_grant "code_verifier or verifier is not needed").
    needless = exchange(drive, authorize(drive, {}), secrets.token_urlsafe(48))
    assert needless.status_code == 400 and needless.json()["error"] == "invalid_grant"


def test_each_code_keeps_what_its_own_request_asked(drive: DriveEmulator) -> None:
    """Two flows with one challenge: access_type belongs to the code, not to the challenge."""
    verifier, challenge = pkce_pair("S256")
    offline = authorize(drive, challenge)  # access_type=offline, prompt=consent
    online = authorize(drive, challenge, access_type=None, prompt=None)
    assert "refresh_token" not in exchange(drive, online, verifier).json()
    assert exchange(drive, offline, verifier).json()["refresh_token"]


def test_bearer_auth_on_every_endpoint(drive: DriveEmulator, api: httpx.Client) -> None:
    missing = httpx.get(f"{drive.api_url}/drive/v3/files")
    assert missing.status_code == 401
    absent = error_of(missing)
    assert absent["errors"][0]["reason"] == "required"
    assert absent["status"] == "UNAUTHENTICATED"
    assert absent["message"].startswith("Request is missing required authentication credential.")
    assert absent["errors"][0]["message"] == "Login Required."

    drive.expire_access_tokens()
    for path in ("/files", "/changes/startPageToken", "/drives", "/about?fields=user"):
        expired = api.get(path)
        assert expired.status_code == 401
        assert 'error="invalid_token"' in expired.headers["www-authenticate"]
        error = error_of(expired)
        assert error["status"] == "UNAUTHENTICATED"
        assert error["message"].startswith("Request had invalid authentication credentials.")
        assert error["errors"][0] == {
            "domain": "global",
            "reason": "authError",
            "message": "Invalid Credentials",
            "locationType": "header",
            "location": "Authorization",
        }
    assert not drive.requests[-1].authorized
    assert "authorization" not in drive.requests[-1].headers


def test_scope_decides_what_a_token_may_do(drive: DriveEmulator) -> None:
    file_id = drive.add_file("a.mp4", "root", b"abc")
    metadata_only = code_flow(
        drive, scope="https://www.googleapis.com/auth/drive.metadata.readonly"
    )
    headers = {"Authorization": f"Bearer {metadata_only['access_token']}"}
    base = f"{drive.api_url}/drive/v3"
    assert httpx.get(f"{base}/files/{file_id}", headers=headers).status_code == 200
    denied = httpx.get(f"{base}/files/{file_id}?alt=media", headers=headers)
    assert denied.status_code == 403
    assert denied.json() == {
        "error": {
            "code": 403,
            "message": "Request had insufficient authentication scopes.",
            "errors": [
                {
                    "domain": "global",
                    "reason": "insufficientPermissions",
                    "message": "Insufficient Permission",
                }
            ],
            "status": "PERMISSION_DENIED",
        }
    }
    assert httpx.get(f"{base}/drives", headers=headers).status_code == 403


def test_about_needs_fields(api: httpx.Client) -> None:
    missing = api.get("/about")
    assert missing.status_code == 400
    assert error_of(missing)["errors"][0]["reason"] == "required"
    assert error_of(missing)["errors"][0]["location"] == "fields"
    about = api.get("/about", params={"fields": "user(displayName,emailAddress)"})
    assert about.json() == {
        "user": {"displayName": "Emulated Owner", "emailAddress": "owner@example.com"}
    }


# ---------------------------------------------------------------- files.list


def test_2500_files_come_in_three_pages_of_partial_resources(
    drive: DriveEmulator, api: httpx.Client
) -> None:
    folder = drive.add_folder("Station 1")
    created = drive.add_many(folder, 2500, size=8)
    drive.add_file("elsewhere.mp4", "root", b"x")
    params = {
        "q": f"'{folder}' in parents and trashed = false",
        "pageSize": "1000",
        "fields": "nextPageToken,files(id,name)",
    }
    pages = [api.get("/files", params=params).json()]
    while "nextPageToken" in pages[-1]:
        pages.append(
            api.get("/files", params={**params, "pageToken": pages[-1]["nextPageToken"]}).json()
        )
    assert [len(p["files"]) for p in pages] == [1000, 1000, 500]
    listed = [f for p in pages for f in p["files"]]
    assert [f["id"] for f in listed] == created
    assert all(set(f) == {"id", "name"} for f in listed)
    assert all(set(p) <= {"files", "nextPageToken"} for p in pages)

    default = api.get("/files", params={"q": params["q"], "pageSize": "2"}).json()
    assert set(default["files"][0]) == {"kind", "id", "name", "mimeType"}
    assert default["kind"] == "drive#fileList"
    other_query = api.get(
        "/files", params={"q": "trashed = true", "pageToken": default["nextPageToken"]}
    )
    assert other_query.status_code == 400  # a token only continues its own query


def test_query_language(drive: DriveEmulator, api: httpx.Client) -> None:
    root = drive.add_folder("Cams")
    sub = drive.add_folder("Day 1", root)
    clip = drive.add_file("clip one.mp4", root, b"1")
    mkv = drive.add_file("Valentine's Day.mkv", root, b"2", mime_type="video/x-matroska")
    note = drive.add_file("notes.txt", root, b"3")
    old = drive.add_file("old.mp4", root, b"4", modified=datetime(2020, 1, 1, tzinfo=UTC))
    drive.trash(old)
    in_root = f"'{root}' in parents"

    def names(q: str) -> set[str]:
        return {f["name"] for f in list_all(api, q=q)}

    assert names(f"{in_root} and mimeType = '{FOLDER}'") == {"Day 1"}
    assert names(f"{in_root} and mimeType != '{FOLDER}' and trashed = false") == {
        "clip one.mp4",
        "Valentine's Day.mkv",
        "notes.txt",
    }
    assert names(f"{in_root} and mimeType contains 'video/' and trashed = false") == {
        "clip one.mp4",
        "Valentine's Day.mkv",
    }
    assert names(f"{in_root} and trashed = true") == {"old.mp4"}
    assert names(f"{in_root} and not trashed = true and not mimeType contains 'video/'") == {
        "Day 1",
        "notes.txt",
    }
    assert names(r"name = 'Valentine\'s Day.mkv'") == {"Valentine's Day.mkv"}
    assert names(f"{in_root} and (name = 'notes.txt' or mimeType = '{FOLDER}')") == {
        "notes.txt",
        "Day 1",
    }
    assert names(f"{in_root} AND name contains 'ONE'") == {"clip one.mp4"}  # per-word prefix
    assert names(f"{in_root} and name contains 'ip'") == set()  # not a substring match
    assert names(f"{in_root} and modifiedTime < '2021-01-01T00:00:00'") == {"old.mp4"}
    assert names(f"'{sub}' in parents") == set()
    assert {f["id"] for f in list_all(api, q="'root' in parents")} == {root}
    assert {clip, mkv, note} <= {f["id"] for f in list_all(api, q="'me' in owners")}

    ordered = api.get("/files", params={"q": in_root, "orderBy": "folder,name desc"}).json()
    assert [f["name"] for f in ordered["files"]] == [
        "Day 1",
        "old.mp4",
        "notes.txt",
        "clip one.mp4",
        "Valentine's Day.mkv",
    ]


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"q": "name = 'unclosed"}, "q"),
        ({"q": "name contains"}, "q"),
        ({"q": "trashed = 'yes'"}, "q"),
        ({"q": "size > 3"}, "q"),
        ({"q": "(name = 'a'"}, "q"),
        ({"pageSize": "0"}, "pageSize"),
        ({"pageSize": "1001"}, "pageSize"),
        ({"pageToken": "made-up"}, "pageToken"),
        ({"orderBy": "size"}, "orderBy"),
        ({"corpora": "drive"}, "driveId"),
        ({"supportsAllDrives": "yes"}, "supportsAllDrives"),
        ({"fields": "files(id,nonsense)"}, "fields"),
        ({"fields": "files(id"}, "fields"),
    ],
)
def test_bad_list_requests_get_400_bodies(
    api: httpx.Client, params: dict[str, str], location: str
) -> None:
    answer = api.get("/files", params=params)
    assert answer.status_code == 400
    error = error_of(answer)
    assert error["status"] == "INVALID_ARGUMENT"
    detail = error["errors"][0]
    assert detail["location"] == location and detail["locationType"] == "parameter"
    assert detail["reason"] == ("invalidParameter" if location == "fields" else "invalid")


# ---------------------------------------------------------------- files.get


def test_metadata_of_files_folders_and_docs(drive: DriveEmulator, api: httpx.Client) -> None:
    data = secrets.token_bytes(5000)
    folder = drive.add_folder("Cams")
    file_id = drive.add_file("a.mp4", folder, data)
    doc = drive.add_file("Notes", folder, b"doc", mime_type=GOOGLE_DOC)
    fields = (
        "id,name,mimeType,parents,size,md5Checksum,sha256Checksum,modifiedTime,version,"
        "trashed,driveId"
    )
    meta = api.get(f"/files/{file_id}", params={"fields": fields}).json()
    assert meta["mimeType"] == "video/mp4" and meta["parents"] == [folder]
    assert meta["size"] == "5000" and meta["version"].isdigit()
    assert meta["md5Checksum"] == hashlib.md5(data).hexdigest()  # noqa: S324
    assert meta["sha256Checksum"] == hashlib.sha256(data).hexdigest()
    assert RFC3339_MS.fullmatch(meta["modifiedTime"]) and meta["trashed"] is False
    assert "driveId" not in meta

    drive.update_file(file_id, b"new")
    again = api.get(f"/files/{file_id}", params={"fields": fields}).json()
    assert int(again["version"]) > int(meta["version"]) and again["size"] == "3"
    assert again["modifiedTime"] >= meta["modifiedTime"]

    folder_meta = api.get(f"/files/{folder}", params={"fields": fields}).json()
    assert folder_meta["mimeType"] == FOLDER and not {"size", "md5Checksum"} & set(folder_meta)
    assert "md5Checksum" not in api.get(f"/files/{doc}", params={"fields": fields}).json()
    assert api.get(f"/files/{file_id}").json() == {
        "kind": "drive#file",
        "id": file_id,
        "name": "a.mp4",
        "mimeType": "video/mp4",
    }
    root = api.get("/files/root", params={"fields": "id,mimeType"}).json()
    assert root == {"id": drive.ROOT, "mimeType": FOLDER}

    missing = api.get("/files/1nope")
    assert missing.status_code == 404
    assert error_of(missing)["errors"][0] == {
        "domain": "global",
        "reason": "notFound",
        "message": "File not found: 1nope.",
        "locationType": "parameter",
        "location": "fileId",
    }


def test_downloads_whole_and_by_range(drive: DriveEmulator, api: httpx.Client) -> None:
    data = secrets.token_bytes(700_000)  # several chunks
    file_id = drive.add_file("a.mp4", "root", data)
    media = f"/files/{file_id}"
    whole = api.get(media, params={"alt": "media", "acknowledgeAbuse": "false"})
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"].startswith("video/mp4")

    cases = {
        "bytes=10-19": (10, 20),
        "bytes=699990-": (699_990, 700_000),
        "bytes=-5": (699_995, 700_000),
    }
    for header, (start, end) in cases.items():
        part = api.get(media, params={"alt": "media"}, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.content == data[start:end]
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/700000"
    past_end = api.get(media, params={"alt": "media"}, headers={"Range": "bytes=700000-"})
    assert past_end.status_code == 416
    assert past_end.headers["content-range"] == "bytes */700000"
    assert past_end.json() == {  # no location and no status, as Google sends it
        "error": {
            "code": 416,
            "message": "Request range not satisfiable",
            "errors": [
                {
                    "domain": "global",
                    "reason": "requestedRangeNotSatisfiable",
                    "message": "Request range not satisfiable",
                }
            ],
        }
    }

    folder = api.get(f"/files/{drive.add_folder('F')}", params={"alt": "media"})
    doc = api.get(
        f"/files/{drive.add_file('D', 'root', b'x', mime_type=GOOGLE_DOC)}", params={"alt": "media"}
    )
    for refused in (folder, doc):
        assert refused.status_code == 403
        assert error_of(refused)["errors"][0]["reason"] == "fileNotDownloadable"


# ---------------------------------------------------------------- changes


def test_changes_list_newest_state_per_file(drive: DriveEmulator, api: httpx.Client) -> None:
    folder = drive.add_folder("Cams")
    other = drive.add_folder("Other")
    kept = drive.add_file("kept.mp4", folder, b"1")
    gone = drive.add_file("gone.mp4", folder, b"2")
    start = api.get("/changes/startPageToken").json()
    assert start["kind"] == "drive#startPageToken"

    added = drive.add_file("new.mp4", folder, b"3")
    drive.update_file(kept, b"1 again")
    drive.update_file(kept, b"1 once more")
    drive.trash(gone)
    drive.delete(gone)
    trashed = drive.add_file("trashed.mp4", folder, b"4")
    drive.trash(trashed)
    drive.move(added, other)
    drive.rename(added, "renamed.mp4")

    fields = (
        "nextPageToken,newStartPageToken,"
        "changes(fileId,removed,time,file(name,parents,trashed,size))"
    )
    changes, token, pages = [], start["startPageToken"], 0
    while True:
        page = api.get("/changes", params={"pageToken": token, "pageSize": "2", "fields": fields})
        body = page.json()
        changes += body["changes"]
        pages += 1
        if "newStartPageToken" in body:
            break
        token = body["nextPageToken"]
    assert pages == 2
    by_file = {c["fileId"]: c for c in changes}
    assert len(by_file) == len(changes) == 4  # each file once
    assert by_file[kept]["file"]["size"] == str(len(b"1 once more"))
    assert by_file[gone] == {"fileId": gone, "removed": True, "time": by_file[gone]["time"]}
    assert by_file[trashed]["removed"] is False and by_file[trashed]["file"]["trashed"] is True
    assert by_file[added]["file"] == {
        "name": "renamed.mp4",
        "parents": [other],
        "trashed": False,
        "size": "1",
    }
    assert all(RFC3339_MS.fullmatch(c["time"]) for c in changes)

    without_removed = api.get(
        "/changes", params={"pageToken": start["startPageToken"], "includeRemoved": "false"}
    ).json()
    assert gone not in {c["fileId"] for c in without_removed["changes"]}
    assert without_removed["changes"][0]["kind"] == "drive#change"
    assert set(without_removed["changes"][0]["file"]) == {"kind", "id", "name", "mimeType"}

    quiet = api.get("/changes", params={"pageToken": body["newStartPageToken"]}).json()
    assert quiet["changes"] == [] and quiet["newStartPageToken"] == body["newStartPageToken"]

    missing = api.get("/changes")
    assert missing.status_code == 400
    assert error_of(missing)["errors"][0]["reason"] == "required"
    assert api.get("/changes", params={"pageToken": "999999"}).status_code == 400


# ---------------------------------------------------------------- shared drives


def test_shared_drives_need_the_flags(drive: DriveEmulator, api: httpx.Client) -> None:
    team = drive.add_shared_drive("Warehouse")
    drive.add_shared_drive("Office")
    folder = drive.add_folder("Station 2", team)
    clip = drive.add_file("s.mp4", folder, b"shared")
    drive.add_file("mine.mp4", "root", b"mine")
    both = {"supportsAllDrives": "true", "includeItemsFromAllDrives": "true"}

    first = api.get("/drives", params={"pageSize": "1"}).json()
    second = api.get("/drives", params={"pageSize": "1", "pageToken": first["nextPageToken"]})
    assert [d["name"] for d in first["drives"] + second.json()["drives"]] == ["Warehouse", "Office"]
    assert first["drives"][0] == {"kind": "drive#drive", "id": team, "name": "Warehouse"}
    assert api.get("/drives", params={"pageSize": "101"}).status_code == 400

    in_folder = f"'{folder}' in parents"
    assert list_all(api, q=in_folder) == []
    assert list_all(api, q=in_folder, includeItemsFromAllDrives="true") == []
    assert [f["id"] for f in list_all(api, q=in_folder, **both)] == [clip]
    in_drive = list_all(api, corpora="drive", driveId=team, fields="files(id,driveId)", **both)
    assert {f["id"] for f in in_drive} == {folder, clip}
    assert all(f["driveId"] == team for f in in_drive)
    assert api.get("/files", params={"driveId": team, **both}).status_code == 400

    assert api.get(f"/files/{clip}").status_code == 404
    found = api.get(f"/files/{clip}", params={"supportsAllDrives": "true", "fields": "driveId"})
    assert found.json() == {"driveId": team}

    token = api.get("/changes/startPageToken").json()["startPageToken"]
    drive.update_file(clip, b"shared 2")
    drive.add_file("mine2.mp4", "root", b"m")
    plain = api.get("/changes", params={"pageToken": token}).json()["changes"]
    flagged = api.get("/changes", params={"pageToken": token, **both}).json()["changes"]
    assert clip not in {c["fileId"] for c in plain}
    assert clip in {c["fileId"] for c in flagged}
    only_team = api.get("/changes", params={"pageToken": token, "driveId": team, **both}).json()
    assert [c["fileId"] for c in only_team["changes"]] == [clip]


# ---------------------------------------------------------------- faults


def test_rate_limits_answer_googles_bodies(drive: DriveEmulator, api: httpx.Client) -> None:
    drive.rate_limit_next(1)
    drive.rate_limit_next(1, reason="rateLimitExceeded")
    drive.rate_limit_next(1, status=429, retry_after=2)

    user_limit = api.get("/files")
    assert user_limit.status_code == 403 and "retry-after" not in user_limit.headers
    assert error_of(user_limit)["errors"][0] == {
        "domain": "usageLimits",
        "reason": "userRateLimitExceeded",
        "message": "User Rate Limit Exceeded",
    }
    # OAuth calls are not API calls: the queue waits for the next API request.
    assert code_flow(drive)["access_token"]
    project_limit = api.get("/changes/startPageToken")
    assert project_limit.status_code == 403
    assert error_of(project_limit)["errors"][0]["reason"] == "rateLimitExceeded"
    too_many = api.get("/files")
    assert too_many.status_code == 429 and too_many.headers["retry-after"] == "2"
    error = error_of(too_many)
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert error["errors"][0]["reason"] == "rateLimitExceeded"
    assert api.get("/files").status_code == 200


def test_cut_download_is_an_incomplete_body(drive: DriveEmulator, api: httpx.Client) -> None:
    data = secrets.token_bytes(300_000)
    file_id = drive.add_file("a.mp4", "root", data)
    drive.cut_next_download(1000)
    with pytest.raises(httpx.RemoteProtocolError):
        api.get(f"/files/{file_id}", params={"alt": "media"})
    drive.cut_next_download(10)
    with (
        pytest.raises(httpx.RemoteProtocolError),
        api.stream("GET", f"/files/{file_id}?alt=media", headers={"Range": "bytes=100-"}) as part,
    ):
        assert part.status_code == 206 and part.headers["content-length"] == str(299_900)
        part.read()
    assert api.get(f"/files/{file_id}", params={"alt": "media"}).content == data


def test_corrupted_download_has_one_flipped_byte(drive: DriveEmulator, api: httpx.Client) -> None:
    data = secrets.token_bytes(100_000)
    file_id = drive.add_file("a.mp4", "root", data)
    drive.corrupt_next_download()
    bad = api.get(f"/files/{file_id}", params={"alt": "media"}).content
    assert len(bad) == len(data)
    assert sum(a != b for a, b in zip(bad, data, strict=True)) == 1
    md5 = api.get(f"/files/{file_id}", params={"fields": "md5Checksum"}).json()["md5Checksum"]
    assert hashlib.md5(bad).hexdigest() != md5 == hashlib.md5(data).hexdigest()  # noqa: S324
    assert api.get(f"/files/{file_id}", params={"alt": "media"}).content == data


def test_download_quota(drive: DriveEmulator, api: httpx.Client) -> None:
    file_id = drive.add_file("a.mp4", "root", b"video")
    drive.quota_exceeded(file_id)
    refused = api.get(f"/files/{file_id}", params={"alt": "media"})
    assert refused.status_code == 403
    assert error_of(refused)["errors"][0]["reason"] == "downloadQuotaExceeded"
    assert api.get(f"/files/{file_id}").status_code == 200  # metadata still answers
    drive.quota_exceeded(file_id, on=False)
    assert api.get(f"/files/{file_id}", params={"alt": "media"}).content == b"video"


def test_requests_are_recorded_and_counted(drive: DriveEmulator, api: httpx.Client) -> None:
    file_id = drive.add_file("a.mp4", "root", b"abcdef")
    drive.reset_counts()
    api.get("/changes/startPageToken")
    api.get("/changes", params={"pageToken": "1"})
    api.get(f"/files/{file_id}", params={"alt": "media"}, headers={"Range": "bytes=0-1"})
    assert drive.count("/drive/v3/changes") == 2
    assert drive.count("/drive/v3/files") == 1
    last = drive.requests[-1]
    assert last.method == "GET" and last.path == f"/drive/v3/files/{file_id}"
    assert last.query == {"alt": "media"} and last.headers["range"] == "bytes=0-1"
    assert last.authorized
    drive.reset_counts()
    assert drive.count("/drive/v3") == 0


def test_googles_own_client_lists_pages_downloads_and_follows_changes(
    drive: DriveEmulator,
) -> None:
    """google-api-python-client, built from the Drive v3 discovery document it ships,
    talks to the emulator as it would to Google: a second client, not ours."""
    import io as _io

    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build
    from googleapiclient.errors import HttpError
    from googleapiclient.http import MediaIoBaseDownload

    token = code_flow(drive)["access_token"]
    service = build(
        "drive",
        "v3",
        credentials=Credentials(token=token),
        static_discovery=True,
        client_options={"api_endpoint": f"{drive.api_url}/drive/v3/"},
        cache_discovery=False,
    )
    folder = drive.add_folder("Packing")
    ids = {drive.add_file(f"clip-{i}.mp4", folder, f"clip {i}".encode()) for i in range(5)}
    start = service.changes().getStartPageToken().execute()["startPageToken"]

    files = service.files()
    request = files.list(
        q=f"'{folder}' in parents and trashed = false",
        pageSize=2,
        fields="nextPageToken, files(id, name, size, md5Checksum)",
    )
    seen: list[dict[str, str]] = []
    pages = 0
    while request is not None:
        answer = request.execute()
        pages += 1
        seen += answer["files"]
        request = files.list_next(request, answer)
    assert pages == 3 and {f["id"] for f in seen} == ids

    data = secrets.token_bytes(300_000)
    big = drive.add_file("big.mp4", folder, data)
    buffer = _io.BytesIO()
    download = MediaIoBaseDownload(buffer, files.get_media(fileId=big), chunksize=100_000)
    done, chunks = False, 0
    while not done:  # ranged requests of 100,000 bytes, as the client pages them
        _, done = download.next_chunk()
        chunks += 1
    assert buffer.getvalue() == data and chunks == 3

    changes, token_ = [], start
    while True:
        page = (
            service.changes()
            .list(pageToken=token_, pageSize=1, fields="nextPageToken,newStartPageToken,changes")
            .execute()
        )
        changes += page["changes"]
        if "newStartPageToken" in page:
            break
        token_ = page["nextPageToken"]
    assert big in {c["fileId"] for c in changes}

    with pytest.raises(HttpError) as missing:
        files.get(fileId="no-such-file").execute()
    assert missing.value.resp.status == 404
    assert missing.value.error_details[0]["reason"] == "notFound"
