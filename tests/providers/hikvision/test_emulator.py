"""The Hikvision emulator speaks ISAPI as documented: checked with plain httpx, not our provider."""

from __future__ import annotations

import io
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import av
import httpx
import pytest

from tests.providers.hikvision.emulator import HIKVISION_NS, ISAPI_NS, HikvisionDevice, User

PASSWORD = "Vpack-12345"
T0 = datetime(2024, 2, 24, 4, 56, 1, tzinfo=UTC)  # 11:56:01 in Ho Chi Minh City


@pytest.fixture
def nvr() -> Iterator[HikvisionDevice]:
    with HikvisionDevice(lock_after=3) as device:
        device.add_channel("Packing 1")
        device.add_channel("Packing 2")
        yield device


def client(device: HikvisionDevice, password: str = PASSWORD, **kwargs: object) -> httpx.Client:
    auth = kwargs.pop("auth", httpx.DigestAuth("admin", password))
    return httpx.Client(base_url=device.base_url, auth=auth, timeout=10, **kwargs)  # type: ignore[arg-type]


def xml(response: httpx.Response) -> ET.Element:
    return ET.fromstring(response.content)  # noqa: S314 - our own emulator's answer


def text(root: ET.Element, path: str, ns: str = ISAPI_NS) -> str:
    found = root.find("/".join(f"{{{ns}}}{part}" for part in path.split("/")))
    assert found is not None, path
    return found.text or ""


def search_body(
    tracks: list[int],
    start: str,
    end: str,
    *,
    position: int = 0,
    max_results: int = 40,
    position_tag: str = "searchResultPostion",
    search_id: str | None = None,
) -> str:
    track_xml = "".join(f"<trackID>{t}</trackID>" for t in tracks)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<CMSearchDescription version="1.0" xmlns="{ISAPI_NS}">'
        f"<searchID>{search_id or uuid.uuid4()}</searchID>"
        f"<trackIDList>{track_xml}</trackIDList>"
        f"<timeSpanList><timeSpan><startTime>{start}</startTime><endTime>{end}</endTime>"
        "</timeSpan></timeSpanList>"
        f"<maxResults>{max_results}</maxResults>"
        f"<{position_tag}>{position}</{position_tag}>"
        "<metadataList><metadataDescriptor>//recordType.meta.std-cgi.com</metadataDescriptor>"
        "</metadataList></CMSearchDescription>"
    )


def matches(root: ET.Element) -> list[ET.Element]:
    return root.findall(f"{{{ISAPI_NS}}}matchList/{{{ISAPI_NS}}}searchMatchItem")


# ---------------------------------------------------------------- authentication
def test_digest_login_reads_device_info(nvr: HikvisionDevice) -> None:
    with client(nvr) as http:
        answer = http.get("/ISAPI/System/deviceInfo")
    assert answer.status_code == 200
    root = xml(answer)
    assert root.tag == f"{{{ISAPI_NS}}}DeviceInfo"
    assert text(root, "model") == "DS-7608NI-K2"
    assert text(root, "serialNumber").startswith("DS-7608NI-K2")
    assert text(root, "firmwareVersion") == "V4.62.210"
    assert text(root, "deviceType") == "NVR"
    assert nvr.failed_logins == 0


def test_without_credentials_the_device_challenges(nvr: HikvisionDevice) -> None:
    answer = httpx.get(f"{nvr.base_url}/ISAPI/System/deviceInfo")
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith("Digest ") and 'qop="auth"' in challenge
    assert 'realm="DS-7608NI-K2"' in challenge and 'stale="FALSE"' in challenge
    assert re.search(r'nonce="[0-9a-f]{16,}"', challenge)
    assert text(xml(answer), "statusString") == "Unauthorized"
    assert nvr.failed_logins == 0, "asking for a challenge is not a failed login"


def test_wrong_passwords_count_down_then_lock(nvr: HikvisionDevice) -> None:
    left, locked = [], []
    for _ in range(3):
        # A fresh client each time: one challenge, one wrong answer, one failed login.
        # (A reused httpx.DigestAuth answers a refusal with a second try.)
        with client(nvr, "wrong") as http:
            answer = http.get("/ISAPI/System/deviceInfo")
        assert answer.status_code == 401
        left.append(text(xml(answer), "retryLoginTime"))
        locked.append(text(xml(answer), "lockStatus"))
    assert left == ["2", "1", "0"] and locked == ["unlock", "unlock", "lock"]
    assert nvr.is_locked() and nvr.failed_logins == 3
    with client(nvr) as http:  # the right password does not open a locked account
        answer = http.get("/ISAPI/System/deviceInfo")
    assert answer.status_code == 401 and text(xml(answer), "lockStatus") == "lock"
    assert 0 < int(text(xml(answer), "unlockTime")) <= 1800


def test_a_wrong_password_during_a_lock_starts_it_again(nvr: HikvisionDevice) -> None:
    nvr.lock_seconds = 1800
    nvr.lock_account()
    nvr._locks["admin"].until -= 600  # ten minutes into the lock
    with client(nvr) as http:
        before = int(text(xml(http.get("/ISAPI/System/deviceInfo")), "unlockTime"))
    with client(nvr, "wrong") as http:
        after = int(text(xml(http.get("/ISAPI/System/deviceInfo")), "unlockTime"))
    assert before <= 1200 and after > 1700


def test_stale_nonce_is_answered_with_stale_true_and_costs_nothing(nvr: HikvisionDevice) -> None:
    seen: list[tuple[int, str]] = []

    def record(response: httpx.Response) -> None:
        seen.append((response.status_code, response.headers.get("www-authenticate", "")))

    with client(nvr, event_hooks={"response": [record]}) as http:
        assert http.get("/ISAPI/System/deviceInfo").status_code == 200
        nvr.expire_nonces()
        seen.clear()
        assert http.get("/ISAPI/System/deviceInfo").status_code == 200
    assert [s for s, _ in seen] == [401, 200]
    assert 'stale="TRUE"' in seen[0][1]
    assert nvr.failed_logins == 0


def test_basic_only_firmware() -> None:
    with HikvisionDevice(auth="basic") as device:
        answer = httpx.get(f"{device.base_url}/ISAPI/System/deviceInfo")
        assert answer.headers["www-authenticate"] == 'Basic realm="DS-7608NI-K2"'
        assert httpx.get(answer.url, auth=("admin", PASSWORD)).status_code == 200
        # A Digest-only client gets nowhere: httpx's DigestAuth ignores a Basic challenge.
        with client(device) as http:
            assert http.get("/ISAPI/System/deviceInfo").status_code == 401


def test_https_with_the_devices_self_signed_certificate(tmp_path: Path) -> None:
    with HikvisionDevice(https=True, cert_dir=tmp_path) as device:
        assert device.base_url.startswith("https://")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{device.base_url}/ISAPI/System/deviceInfo")
        with client(device, verify=False) as http:
            assert http.get("/ISAPI/System/deviceInfo").status_code == 200


# ---------------------------------------------------------------- system
def test_channels_of_an_nvr_and_of_a_camera(nvr: HikvisionDevice) -> None:
    with client(nvr) as http:
        root = xml(http.get("/ISAPI/ContentMgmt/InputProxy/channels"))
        names = [c.findtext(f"{{{ISAPI_NS}}}name") for c in root]
        assert names == ["Packing 1", "Packing 2"]
        streams = xml(http.get("/ISAPI/Streaming/channels"))
        assert [s.findtext(f"{{{ISAPI_NS}}}id") for s in streams] == ["101", "102", "201", "202"]
    with HikvisionDevice(kind="camera") as camera, client(camera) as http:
        refused = http.get("/ISAPI/ContentMgmt/InputProxy/channels")
        assert refused.status_code == 403
        assert text(xml(refused), "statusCode") == "4"
        assert text(xml(refused), "subStatusCode") == "notSupport"
        streams = xml(http.get("/ISAPI/Streaming/channels"))
        assert streams[0].findtext(f"{{{ISAPI_NS}}}channelName") == "Camera 01"
        assert text(xml(http.get("/ISAPI/System/deviceInfo")), "deviceType") == "IPCamera"


def test_device_clock_in_its_own_time_zone(nvr: HikvisionDevice) -> None:
    with client(nvr) as http:
        root = xml(http.get("/ISAPI/System/time"))
    local = datetime.fromisoformat(text(root, "localTime"))
    assert local.utcoffset() == timedelta(hours=7)
    assert text(root, "timeZone") == "CST-7:00:00"  # POSIX: west of Greenwich is positive
    assert abs(local - datetime.now(UTC)) < timedelta(minutes=5)


def test_unknown_resources_and_methods_answer_response_status(nvr: HikvisionDevice) -> None:
    with client(nvr) as http:
        unknown = http.get("/ISAPI/Nothing/here")
        wrong_method = http.get("/ISAPI/ContentMgmt/search")
    assert unknown.status_code == 403
    assert text(xml(unknown), "requestURL") == "/ISAPI/Nothing/here"
    assert text(xml(unknown), "statusString") == "Invalid Operation"
    assert wrong_method.status_code == 405 and text(xml(wrong_method), "statusCode") == "4"


def test_busy_device(nvr: HikvisionDevice) -> None:
    nvr.busy_next(1)
    with client(nvr) as http:
        busy = http.get("/ISAPI/System/deviceInfo")
        assert busy.status_code == 503
        assert (text(xml(busy), "statusCode"), text(xml(busy), "statusString")) == (
            "2",
            "Device Busy",
        )
        assert http.get("/ISAPI/System/deviceInfo").status_code == 200


# ---------------------------------------------------------------- search
def test_search_pages_through_more_until_ok(nvr: HikvisionDevice) -> None:
    for i in range(5):
        nvr.add_recording(1, T0 + timedelta(minutes=i), 2)
    nvr.add_recording(2, T0, 2)  # another channel: not in a track 101 search
    search_id = str(uuid.uuid4()).upper()
    statuses, names = [], []
    with client(nvr) as http:
        position = 0
        while True:
            body = search_body(
                [101],
                "2024-02-24T00:00:00Z",
                "2024-02-24T23:59:59Z",
                position=position,
                max_results=2,
                search_id=search_id,
            )
            answer = http.post("/ISAPI/ContentMgmt/search", content=body)
            root = xml(answer)
            assert text(root, "searchID") == "{" + search_id.lower() + "}"
            statuses.append(text(root, "responseStatusStrg"))
            found = matches(root)
            assert int(text(root, "numOfMatches")) == len(found)
            names += [text(m, "mediaSegmentDescriptor/name") for m in found]
            position += len(found)
            if statuses[-1] != "MORE":
                break
    assert statuses == ["MORE", "MORE", "OK"]
    assert len(names) == len(set(names)) == 5


def test_search_times_are_device_local_with_a_z(nvr: HikvisionDevice) -> None:
    recording = nvr.add_recording(1, T0, 3)
    with client(nvr) as http:
        # 11:00-12:00 on the device's clock is 04:00-05:00 UTC: it holds the recording.
        body = search_body([101], "2024-02-24T11:00:00Z", "2024-02-24T12:00:00Z")
        answer = http.post("/ISAPI/ContentMgmt/search", content=body)
    assert b"&amp;endtime=" in answer.content, "the URI's ampersands are XML-escaped"
    (item,) = matches(xml(answer))
    assert text(item, "timeSpan/startTime") == "2024-02-24T11:56:01Z"
    assert text(item, "timeSpan/endTime") == "2024-02-24T11:56:04Z"
    assert text(item, "trackID") == "101"
    uri = text(item, "mediaSegmentDescriptor/playbackURI")
    assert uri.startswith("rtsp://192.168.1.64/Streaming/tracks/101/?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(uri).query).items()}
    assert query["starttime"] == "20240224T115601Z" and query["endtime"] == "20240224T115604Z"
    assert query["name"] == recording.name and int(query["size"]) == len(recording.data)


def test_search_in_true_utc_and_the_older_namespace() -> None:
    with HikvisionDevice(z_is_local=False, namespace=HIKVISION_NS) as device:
        device.add_channel("Cam")
        device.add_recording(1, T0, 2)
        with client(device) as http:
            body = search_body([101], "2024-02-24T04:00:00Z", "2024-02-24T05:00:00Z")
            root = xml(http.post("/ISAPI/ContentMgmt/search", content=body))
    assert root.tag == f"{{{HIKVISION_NS}}}CMSearchResult"
    assert text(root, "numOfMatches", HIKVISION_NS) == "1"
    start = root.find(f".//{{{HIKVISION_NS}}}startTime")
    assert start is not None and start.text == "2024-02-24T04:56:01Z"


def test_search_with_nothing_there(nvr: HikvisionDevice) -> None:
    with client(nvr) as http:
        body = search_body([101], "2024-02-24T00:00:00Z", "2024-02-24T23:59:59Z")
        root = xml(http.post("/ISAPI/ContentMgmt/search", content=body))
    assert text(root, "responseStatusStrg") == "NO MATCHES"
    assert text(root, "numOfMatches") == "0" and not matches(root)


@pytest.mark.parametrize(
    "body",
    [
        search_body([101], "2024-02-24T00:00:00Z", "2024-02-25T00:00:00Z", search_id="abc"),
        search_body([], "2024-02-24T00:00:00Z", "2024-02-25T00:00:00Z"),
    ],
    ids=["searchID not a GUID", "no track"],
)
def test_searches_the_device_refuses(nvr: HikvisionDevice, body: str) -> None:
    with client(nvr) as http:
        answer = http.post("/ISAPI/ContentMgmt/search", content=body)
    assert answer.status_code == 400
    assert text(xml(answer), "statusCode") == "6"
    assert text(xml(answer), "subStatusCode") == "badXmlContent"


def test_page_size_is_capped_by_the_device(nvr: HikvisionDevice) -> None:
    nvr.max_results = 3
    for i in range(5):
        nvr.add_recording(1, T0 + timedelta(minutes=i), 1)
    with client(nvr) as http:
        body = search_body([101], "2024-02-24T00:00:00Z", "2024-02-25T00:00:00Z", max_results=50)
        root = xml(http.post("/ISAPI/ContentMgmt/search", content=body))
    assert text(root, "responseStatusStrg") == "MORE" and len(matches(root)) == 3


def test_a_recording_being_written_shows_its_end_moving(nvr: HikvisionDevice) -> None:
    start = nvr.now() - timedelta(seconds=5)
    recording = nvr.start_recording(1, start)
    window_end = nvr.device_text(nvr.now() + timedelta(hours=1))
    with client(nvr) as http:
        body = search_body([101], nvr.device_text(start - timedelta(hours=1)), window_end)
        (item,) = matches(xml(http.post("/ISAPI/ContentMgmt/search", content=body)))
        end = datetime.strptime(text(item, "timeSpan/endTime"), "%Y-%m-%dT%H:%M:%SZ")
        assert end >= start.astimezone(nvr.tz).replace(tzinfo=None) + timedelta(seconds=4)
        nvr.finish_recording(recording, start + timedelta(seconds=5))
        (item,) = matches(xml(http.post("/ISAPI/ContentMgmt/search", content=body)))
    assert text(item, "timeSpan/endTime") == nvr.device_text(start + timedelta(seconds=5))


def test_days_with_recordings_in_device_time(nvr: HikvisionDevice) -> None:
    nvr.add_recording(1, datetime(2024, 2, 9, 23, 30, tzinfo=UTC), 2)  # 10 Feb, 06:30 local
    with client(nvr) as http:
        body = "<trackDailyParam><year>2024</year><monthOfYear>2</monthOfYear></trackDailyParam>"
        root = xml(
            http.post("/ISAPI/ContentMgmt/record/tracks/101/dailyDistribution", content=body)
        )
    days = root.findall(f"{{{ISAPI_NS}}}dayList/{{{ISAPI_NS}}}day")
    assert len(days) == 29
    recorded = [
        d.findtext(f"{{{ISAPI_NS}}}dayOfMonth")
        for d in days
        if d.findtext(f"{{{ISAPI_NS}}}record") == "true"
    ]
    assert recorded == ["10"]


# ---------------------------------------------------------------- download
def _uri_of(device: HikvisionDevice, http: httpx.Client) -> str:
    body = search_body([101], "2000-01-01T00:00:00Z", "2037-12-31T23:59:59Z")
    (item,) = matches(xml(http.post("/ISAPI/ContentMgmt/search", content=body)))
    return text(item, "mediaSegmentDescriptor/playbackURI")


def _download_body(uri: str) -> str:
    escaped = uri.replace("&", "&amp;")
    return (
        f'<downloadRequest version="1.0" xmlns="{ISAPI_NS}">'
        f"<playbackURI>{escaped}</playbackURI></downloadRequest>"
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_download_returns_the_recording_as_mpeg_ps(nvr: HikvisionDevice, method: str) -> None:
    recording = nvr.add_recording(1, T0, 3)
    with client(nvr) as http:
        uri = _uri_of(nvr, http)
        answer = http.request(method, "/ISAPI/ContentMgmt/download", content=_download_body(uri))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "Opaque/data"
    assert answer.content == recording.data
    assert len(answer.content) == int(parse_qs(urlsplit(uri).query)["size"][0])
    assert answer.content.startswith(b"IMKH") and answer.content[40:44] == b"\x00\x00\x01\xba"
    with av.open(io.BytesIO(answer.content)) as container:
        assert container.format.name == "mpeg"
        assert {s.type for s in container.streams} == {"video", "audio"}
        assert sum(1 for _ in container.decode(video=0)) == 30


def test_firmware_that_takes_downloads_only_by_post() -> None:
    with HikvisionDevice(download_methods=frozenset({"POST"})) as device:
        device.add_channel("Cam")
        device.add_recording(1, T0, 1)
        with client(device) as http:
            body = _download_body(_uri_of(device, http))
            refused = http.request("GET", "/ISAPI/ContentMgmt/download", content=body)
            assert refused.status_code == 405 and text(xml(refused), "statusCode") == "4"
            assert http.post("/ISAPI/ContentMgmt/download", content=body).status_code == 200


def test_dropped_and_shortened_downloads(nvr: HikvisionDevice) -> None:
    recording = nvr.add_recording(1, T0, 3)
    with client(nvr) as http:
        body = _download_body(_uri_of(nvr, http))
        nvr.cut_next_downloads(after_bytes=10_000, drop=True)
        with pytest.raises(httpx.RemoteProtocolError):
            http.request("GET", "/ISAPI/ContentMgmt/download", content=body)
        nvr.cut_next_downloads(after_bytes=10_000, drop=False)
        short = http.request("GET", "/ISAPI/ContentMgmt/download", content=body)
        assert short.status_code == 200 and short.content == recording.data[:10_000]
        whole = http.request("GET", "/ISAPI/ContentMgmt/download", content=body)
        assert whole.content == recording.data


def test_download_of_a_recording_that_is_gone(nvr: HikvisionDevice) -> None:
    recording = nvr.add_recording(1, T0, 1)
    with client(nvr) as http:
        body = _download_body(_uri_of(nvr, http))
        nvr.remove_recording(recording)
        answer = http.request("GET", "/ISAPI/ContentMgmt/download", content=body)
    assert answer.status_code == 404 and text(xml(answer), "subStatusCode") == "notFound"


def test_a_user_without_playback_rights() -> None:
    users = [User("admin", PASSWORD), User("viewer", "View-12345", playback=False)]
    with HikvisionDevice(users=users) as device:
        device.add_channel("Cam")
        with httpx.Client(
            base_url=device.base_url, auth=httpx.DigestAuth("viewer", "View-12345")
        ) as http:
            assert http.get("/ISAPI/System/deviceInfo").status_code == 200
            body = search_body([101], "2024-02-24T00:00:00Z", "2024-02-25T00:00:00Z")
            answer = http.post("/ISAPI/ContentMgmt/search", content=body)
    assert answer.status_code == 403 and text(xml(answer), "subStatusCode") == "lowPrivilege"


def test_download_capabilities(nvr: HikvisionDevice) -> None:
    with client(nvr) as http:
        root = xml(http.get("/ISAPI/ContentMgmt/download/capabilities"))
    assert text(root, "isSupportDownloadbyFileName") == "true"
    assert text(root, "isSupportDownloadbyTime") == "false"


@pytest.mark.parametrize(
    "position_tag", ["", "searchResultPosition"], ids=["no position", "dictionary spelling"]
)
def test_a_search_without_hikvisions_position_element_gets_the_first_page(
    nvr: HikvisionDevice, position_tag: str
) -> None:
    """HikLoad sends no position and pyHik the dictionary spelling, which a device does
    not know: both get the first page, every time (the trap for a client paging so)."""
    for i in range(3):
        nvr.add_recording(1, T0 + timedelta(minutes=i), 2)
    body = search_body([101], "2024-02-24T00:00:00Z", "2024-02-24T23:59:59Z", max_results=2)
    body = body.replace("<searchResultPostion>0</searchResultPostion>", "")
    if position_tag:
        body = body.replace("</maxResults>", f"</maxResults><{position_tag}>2</{position_tag}>")
    with client(nvr) as http:
        pages = [xml(http.post("/ISAPI/ContentMgmt/search", content=body)) for _ in range(2)]
    for root in pages:
        assert text(root, "responseStatusStrg") == "MORE"
        assert [text(m, "mediaSegmentDescriptor/name") for m in matches(root)] == [
            text(m, "mediaSegmentDescriptor/name") for m in matches(pages[0])
        ]
        assert len(matches(root)) == 2


def test_hikvisionapi_connects_and_reads_the_device(nvr: HikvisionDevice) -> None:
    """A community client (hikvisionapi), not ours: its constructor asks for
    /ISAPI/System/status with Basic, then Digest after the 401, and insists on a 2xx."""
    from hikvisionapi import Client

    cam = Client(nvr.base_url, "admin", PASSWORD, timeout=10)
    status = cam.System.status(method="get")
    assert "currentDeviceTime" in status["DeviceStatus"]
    assert int(status["DeviceStatus"]["deviceUpTime"]) >= 0
    info = cam.System.deviceInfo(method="get")
    assert info["DeviceInfo"]["serialNumber"] == nvr.serial
    assert nvr.failed_logins == 0, "its Basic probe is a scheme the device does not take"


def _digest_answer(
    device: HikvisionDevice,
    challenge: str,
    *,
    uri: str = "/ISAPI/System/deviceInfo",
    nc: str = "00000001",
    algorithm: str = "MD5",
    qop: bool = True,
) -> str:
    """An Authorization header computed by hand (RFC 7616 §3.4.1), so a test can send
    what well-behaved clients never would."""
    import hashlib

    nonce = re.search(r'nonce="([^"]+)"', challenge)
    assert nonce is not None
    digest = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm]

    def h(value: str) -> str:
        return digest(value.encode()).hexdigest()

    ha1 = h(f"admin:{device.realm}:{PASSWORD}")
    ha2 = h(f"GET:{uri}")
    fields = f'username="admin", realm="{device.realm}", nonce="{nonce.group(1)}", uri="{uri}"'
    if not qop:  # RFC 2069's answer, for a challenge that asked for qop
        return f'Digest {fields}, response="{h(f"{ha1}:{nonce.group(1)}:{ha2}")}"'
    answer = h(f"{ha1}:{nonce.group(1)}:{nc}:cafe:auth:{ha2}")
    return (
        f'Digest {fields}, algorithm={algorithm}, qop=auth, nc={nc}, cnonce="cafe", '
        f'response="{answer}"'
    )


def test_digest_answers_only_the_challenge_it_was_given(nvr: HikvisionDevice) -> None:
    with httpx.Client(base_url=nvr.base_url, timeout=10) as http:
        challenge = http.get("/ISAPI/System/deviceInfo").headers["www-authenticate"]
        assert 'algorithm="MD5"' in challenge and 'qop="auth"' in challenge

        def get(header: str) -> httpx.Response:
            return http.get("/ISAPI/System/deviceInfo", headers={"Authorization": header})

        assert get(_digest_answer(nvr, challenge)).status_code == 200
        replay = get(_digest_answer(nvr, challenge))  # the same nonce count again
        assert replay.status_code == 401 and 'stale="TRUE"' in replay.headers["www-authenticate"]
        assert get(_digest_answer(nvr, challenge, nc="00000002")).status_code == 200
        assert nvr.failed_logins == 0, "a replay costs no try: the password was right"
        for wrong in (
            _digest_answer(nvr, challenge, nc="00000003", algorithm="SHA-256"),
            _digest_answer(nvr, challenge, qop=False),
        ):
            assert get(wrong).status_code == 401
        assert nvr.failed_logins == 2


def test_nonces_past_their_lifetime_are_forgotten(nvr: HikvisionDevice) -> None:
    with httpx.Client(base_url=nvr.base_url, timeout=10) as http:
        for _ in range(5):
            http.get("/ISAPI/System/deviceInfo")
        assert len(nvr._nonces) == 5
        nvr.expire_nonces()
        http.get("/ISAPI/System/deviceInfo")
    assert len(nvr._nonces) == 1, "only the nonce just issued is kept"


# ---------------------------------------------------------------- capabilities and events
def test_capabilities_say_what_the_device_serves(nvr: HikvisionDevice) -> None:
    with client(nvr) as http:
        device = xml(http.get("/ISAPI/System/capabilities"))
        storage = xml(http.get("/ISAPI/ContentMgmt/capabilities"))
        io_proxy = http.get("/ISAPI/ContentMgmt/IOProxy/inputs")
        subscribe = http.get("/ISAPI/Event/notification/subscribeEventCap")
    assert device.tag == f"{{{ISAPI_NS}}}DeviceCap" and storage.tag == f"{{{ISAPI_NS}}}RacmCap"
    assert text(device, "SysCap/VideoCap/videoInputPortNums") == "0", "an NVR has no analog input"
    assert text(device, "EventCap/isSupportMotionDetection") == "true"
    # RacmCap reads the same alone and inside DeviceCap.
    embedded = device.find(f"{{{ISAPI_NS}}}RacmCap")
    assert embedded is not None
    assert [(e.tag, e.text) for e in embedded] == [(e.tag, e.text) for e in storage]
    assert text(storage, "inputProxyNums") == "8"
    # What is advertised as missing is missing.
    assert text(storage, "isSupportIOInputProxy") == "false" and io_proxy.status_code == 403
    assert text(device, "SysCap/isSupportSubscribeEvent") == "false"
    assert subscribe.status_code == 403


def test_an_nvr_takes_as_many_cameras_as_its_capability_says() -> None:
    with HikvisionDevice(channel_capacity=2) as device:
        device.add_channel("One")
        device.add_channel("Two")
        with pytest.raises(ValueError, match="takes 2 cameras"):
            device.add_channel("Three")
        with client(device) as http:
            storage = xml(http.get("/ISAPI/ContentMgmt/capabilities"))
    assert text(storage, "inputProxyNums") == "2"


def test_a_camera_has_one_analog_input_and_no_digital_channels() -> None:
    with HikvisionDevice(kind="camera") as camera, client(camera) as http:
        device = xml(http.get("/ISAPI/System/capabilities"))
    assert text(device, "SysCap/VideoCap/videoInputPortNums") == "1"
    assert text(device, "RacmCap/inputProxyNums") == "0"


def test_event_triggers_per_channel(nvr: HikvisionDevice) -> None:
    with client(nvr) as http:
        root = xml(http.get("/ISAPI/Event/triggers"))
    assert root.tag == f"{{{ISAPI_NS}}}EventTriggerList"
    triggers = {text(t, "id"): t for t in root}
    assert sorted(triggers) == ["VMD-1", "VMD-2", "videoloss-1", "videoloss-2"]
    motion = triggers["VMD-2"]
    assert text(motion, "eventType") == "VMD"
    assert text(motion, "videoInputChannelID") == text(motion, "dynVideoInputChannelID") == "2"
    actions = motion.findall(f"{{{ISAPI_NS}}}EventTriggerNotificationList/*")
    assert [text(a, "notificationMethod") for a in actions] == ["center", "record"]
    assert text(actions[1], "videoInputID") == "2", "a record linkage names its channel"


def test_pyhik_finds_the_motion_sensors_of_every_channel(nvr: HikvisionDevice) -> None:
    """pyHik's HikCamera, as Home Assistant builds it: deviceInfo (Basic, then Digest
    after the 401), then the triggers, which become its event states."""
    from pyhik.hikvision import HikCamera

    camera = HikCamera(nvr.base_url, usr="admin", pwd=PASSWORD)
    assert camera.get_name == nvr.device_name
    assert camera.get_id == str(uuid.uuid5(uuid.NAMESPACE_OID, nvr.serial))
    assert camera.get_type == "NVR", "a trigger on channel 2 makes it an NVR"
    states = camera.current_event_states
    assert set(states) == {"Motion"}, "video loss is pyHik's watchdog, not a sensor"
    assert [(on, channel) for on, channel, *_ in states["Motion"]] == [(False, 1), (False, 2)]
    assert nvr.failed_logins == 0


def test_pyhik_sees_a_single_camera() -> None:
    from pyhik.hikvision import HikCamera

    with HikvisionDevice(kind="camera", namespace=HIKVISION_NS) as device:
        camera = HikCamera(device.base_url, usr="admin", pwd=PASSWORD)
        assert camera.get_type == "CAM"
        assert [channel for _, channel, *_ in camera.current_event_states["Motion"]] == [1]


def test_pyhik_isapi_client_and_hikvisionapi_read_the_capabilities(nvr: HikvisionDevice) -> None:
    from hikvisionapi import Client
    from pyhik.isapi import ISAPIClient

    isapi = ISAPIClient(nvr.base_url, username="admin", password=PASSWORD)
    try:
        device = isapi.custom_request("GET", "/ISAPI/System/capabilities")["DeviceCap"]
    finally:
        isapi.close()
    assert device["RacmCap"]["inputProxyNums"] == "8"
    cam = Client(nvr.base_url, "admin", PASSWORD, timeout=10)
    storage = cam.ContentMgmt.capabilities(method="get")["RacmCap"]
    assert storage["isSupportIOInputProxy"] == "false"
    assert cam.System.capabilities(method="get")["DeviceCap"]["isSupportSnapshot"] == "false"
    assert nvr.failed_logins == 0
