"""Scans' listings without botocore (providers/s3_list.py): the answer read as boto3
reads it, the bucket URL only where settings decide it, the route botocore would
take, and boto3 taking over whenever the listing is not a plain success."""

from __future__ import annotations

import asyncio

import certifi
import pytest

from tests.providers.s3.harness import AccessKey, AuthMoto, S3Harness, put_many
from vpack.providers.base import Found, ScanEvent
from vpack.providers.errors import AuthExpired, NotFound
from vpack.providers.registry import build_provider
from vpack.providers.s3.listing import bucket_url, environment_transport, parse_listing
from vpack.providers.s3.provider import S3Provider, S3SourceOptions

_NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def _listing(entries: str, *, ns: str = _NS, encoding: str = "url", tail: str = "") -> bytes:
    encoded = f"<EncodingType>{encoding}</EncodingType>" if encoding else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult {ns}><Name>b</Name>'
        f"<Prefix>footage%2F</Prefix>{encoded}<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
        f"{tail}{entries}</ListBucketResult>"
    ).encode()


def _entry(key: str, size: str = "65536", storage: str = "STANDARD") -> str:
    storage_element = f"<StorageClass>{storage}</StorageClass>" if storage else ""
    return (
        f"<Contents><Key>{key}</Key><LastModified>2026-11-25T06:17:27.000Z</LastModified>"
        f"<ETag>&quot;d3582e33473b60459591ac0d295478d0&quot;</ETag><Size>{size}</Size>"
        f"{storage_element}</Contents>"
    )


def test_a_page_reads_as_boto3_shapes_it() -> None:
    body = _listing(
        _entry("footage/Cam+1/clip+one.mp4")
        + _entry("footage/Kamera-%C3%BC/%D0%B2%D0%B8%D0%B4%D0%B5%D0%BE%2B1.mp4", storage=""),
        tail="<IsTruncated>true</IsTruncated><NextContinuationToken>1ue/Gc+x=</NextContinuationToken>",
    )
    listing = parse_listing(body)
    assert listing is not None
    assert listing["IsTruncated"] is True
    assert listing["NextContinuationToken"] == "1ue/Gc+x=", "tokens are not URL-encoded"
    first, second = listing["Contents"]
    assert first == {
        "Key": "footage/Cam 1/clip one.mp4",  # '+' is a space in S3's URL encoding
        "ETag": '"d3582e33473b60459591ac0d295478d0"',
        "Size": 65536,
        "LastModified": "2026-11-25T06:17:27.000Z",
        "StorageClass": "STANDARD",
    }
    assert second["Key"] == "footage/Kamera-ü/видео+1.mp4"
    assert "StorageClass" not in second


def test_a_page_without_url_encoding_or_namespace_is_read_as_it_is() -> None:
    listing = parse_listing(
        _listing(
            _entry("footage/a+b%20c.mp4"),
            ns="",
            encoding="",
            tail="<IsTruncated>false</IsTruncated>",
        )
    )
    assert listing is not None
    assert [c["Key"] for c in listing["Contents"]] == ["footage/a+b%20c.mp4"]
    assert listing["IsTruncated"] is False and "NextContinuationToken" not in listing


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>Bad gateway</body></html>",
        b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>",
        b"<ListBucketResult><Contents><Key>a.mp4</Key>",  # cut short
        _listing(_entry("footage/a.mp4", size="lots")),
    ],
)
def test_anything_but_a_listing_is_left_to_boto3(body: bytes) -> None:
    assert parse_listing(body) is None


@pytest.mark.parametrize(
    ("endpoint", "path_style", "bucket", "region", "url"),
    [
        ("http://127.0.0.1:9000", True, "cams", "us-east-1", "http://127.0.0.1:9000/cams"),
        ("https://minio.lan/s3/", True, "cams", "us-east-1", "https://minio.lan/s3/cams"),
        ("https://minio.lan", False, "cams", "us-east-1", None),  # the host decides: boto3's rules
        (None, False, "shop-cams", "eu-west-3", "https://shop-cams.s3.eu-west-3.amazonaws.com"),
        (None, False, "shop.cams", "eu-west-3", None),  # dots break the wildcard certificate
        (None, True, "shop-cams", "eu-west-3", None),
        (None, False, "shop-cams", "cn-north-1", None),  # another partition, another domain
        (None, False, "Shop_Cams", "us-east-1", None),  # a legacy name, no host label
    ],
)
def test_the_bucket_url_only_where_settings_decide_it(
    endpoint: str | None, path_style: bool, bucket: str, region: str, url: str | None
) -> None:
    assert bucket_url(endpoint, path_style, bucket, region) == url


def test_the_route_is_the_one_botocore_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    plain = environment_transport("https://cams.s3.us-east-1.amazonaws.com", 15, 60)
    assert plain.proxy is None and plain.ca_bundle == certifi.where()
    assert (plain.connect_timeout, plain.read_timeout) == (15, 60)

    monkeypatch.setenv("HTTP_PROXY", "proxy.lan:3128")  # upper case and no scheme: still read
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/vpack/ca.pem")
    proxied = environment_transport("http://nas.lan:9000/cams", 15, 60)
    assert proxied.proxy == "http://proxy.lan:3128"
    assert proxied.ca_bundle == "/etc/vpack/ca.pem"
    assert environment_transport("https://nas.lan/cams", 15, 60).proxy is None, "http only"

    monkeypatch.setenv("NO_PROXY", "nas.lan")
    assert environment_transport("http://nas.lan:9000/cams", 15, 60).proxy is None


async def _scan(provider: S3Provider, selection: str) -> list[ScanEvent]:
    return [e async for e in provider.scan(selection, None, S3SourceOptions())]


async def test_after_a_listing_reads_need_no_boto3_until_one_fails(s3: S3Harness) -> None:
    keys = [f"{s3.prefix}Cam1/clip-{i}.mp4" for i in range(3)]
    await asyncio.to_thread(put_many, s3.client, s3.bucket, keys, b"small clip")
    provider = s3.build(s3.connection_config())
    assert isinstance(provider, S3Provider)
    try:
        videos = [e.video for e in await _scan(provider, s3.selection()) if isinstance(e, Found)]
        s3.proxy.reset_counts()
        for video in videos:
            assert b"".join([c async for c in provider.open(video)]) == b"small clip"
            assert b"".join([c async for c in provider.open(video, offset=6)]) == b"clip"
        assert provider._client_obj is None, "the listing showed the route: no boto3"
        assert s3.proxy.counts["GetObject"] == 6

        gone = videos[0]
        await asyncio.to_thread(s3.client.delete_object, Bucket=s3.bucket, Key=gone.remote_id)
        with pytest.raises(NotFound, match="removed before it could be copied"):
            [c async for c in provider.open(gone)]
        assert provider._client_obj is not None, "the 404 was asked again through boto3"
    finally:
        await provider.aclose()


async def test_a_scan_lists_without_making_a_boto3_client(s3: S3Harness) -> None:
    keys = [f"{s3.prefix}Cam 1/clip-{i:04d}~ü.mp4" for i in range(1500)]
    await asyncio.to_thread(put_many, s3.client, s3.bucket, keys, b"x")
    s3.proxy.reset_counts()
    provider = s3.build(s3.connection_config())
    assert isinstance(provider, S3Provider)
    try:
        found = [e.video for e in await _scan(provider, s3.selection()) if isinstance(e, Found)]
        assert sorted(v.remote_id for v in found) == sorted(keys)
        assert all(v.size == 1 and v.hash and v.modified_at for v in found)
        assert provider._client_obj is None, "boto3 had no part in the scan"
        assert s3.proxy.counts["ListObjectsV2"] == 2
    finally:
        await provider.aclose()


async def test_a_server_checking_signatures_takes_the_listings_own(locked: AuthMoto) -> None:
    admin = locked.client(locked.admin)
    keys = ["listed/Cam 1/a b.mp4", "listed/Kamera-ü/видео~1.mp4", "listed//double.mp4"]
    for key in keys:
        await asyncio.to_thread(admin.put_object, Bucket=locked.bucket, Key=key, Body=b"x")
    provider = build_provider("s3", locked.config(locked.reader))
    assert isinstance(provider, S3Provider)
    try:
        found = [e.video for e in await _scan(provider, "listed/") if isinstance(e, Found)]
        assert sorted(v.remote_id for v in found) == sorted(keys)
        odd = [e.video for e in await _scan(provider, "listed/Kamera-ü/") if isinstance(e, Found)]
        assert [v.remote_id for v in odd] == ["listed/Kamera-ü/видео~1.mp4"], "a prefix to escape"
        for video in found:
            assert b"".join([c async for c in provider.open(video)]) == b"x"
        assert provider._client_obj is None, "listed and read with our own signatures"
    finally:
        await provider.aclose()


async def test_a_refused_listing_is_asked_again_through_boto3_which_says_why(
    locked: AuthMoto,
) -> None:
    wrong = locked.config(AccessKey(locked.reader.key_id, "wrong-secret"))
    provider = build_provider("s3", wrong)
    assert isinstance(provider, S3Provider)
    try:
        with pytest.raises(AuthExpired, match="secret access key does not belong"):
            await _scan(provider, "footage/")
        assert provider._client_obj is not None, "boto3 asked again"
        assert provider._lister is None and not provider._list_directly
        with pytest.raises(AuthExpired):  # from now on boto3 lists, and says the same
            await _scan(provider, "footage/")
        assert provider._lister is None
    finally:
        await provider.aclose()
